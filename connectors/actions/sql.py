"""`sql` actions: one statement with bound parameters, run exactly once per idempotency key.

    actions:
      - name: flag-promoters
        type: sql
        url: postgresql://crm:${CRM_DB_PASSWORD}@db.example.com/crm
        statement: >
          INSERT INTO outreach (customer_id, campaign, incentive_usd)
          SELECT id, :key, :usd FROM customers WHERE nps >= 9
        params: {usd: "{params.incentive_usd}"}

Bound parameters: the rendered `params`, plus `:outcome`, `:period`, `:approach`, `:action`
and `:key` (the idempotency key); a declared param of the same name wins. An object param is
bound as its JSON text. A plain `postgresql://` or `mysql://` URL uses the installed driver; a
relative `sqlite:///` path is relative to the declaration.

Placeholders in the statement are bound too, never pasted into its text:
- `{params.X}`, `{period}`, `{outcome}`, `{approach}`, `{action}` and `{key}` standing alone
  become a bind parameter holding the value (`{params.usd}` -> `:__p_params_usd`);
- a quoted string literal holding placeholders (`'{params.v}'`, `'campaign {period}'`; MySQL's
  `"..."` and PostgreSQL's `$$...$$` too) becomes one bind parameter holding the literal's text
  with the placeholders filled in, as the action's other strings are rendered;
- a placeholder in a comment is left as written;
- a placeholder that would be part of a name, a type or a prefixed literal (`log_{period}`,
  `"{params.col}"`, `x::{params.t}`, `E'{params.v}'`) is refused with an ActionError: a value
  can never become SQL text.

Exactly once: the statement runs in one transaction with a mark in the target database. The
transaction first inserts the key into `radar_action_keys` (radar's table there, created when
missing: `key` primary key, `reach`, `done_at` in UTC), then runs the statement, then stores its
reach, then commits. A key already marked is not run again: its recorded reach is returned.
Two runs of one key at once conflict on the primary key and one rolls back. (The mark is the
context's key; a hand-built context whose key names another action gets `#<action>` appended.)
On MySQL/MariaDB a statement that commits implicitly (DDL such as CREATE TABLE) ends the
transaction early, so only statements that leave the transaction open get this guarantee.

Every query ends within `timeout` seconds (default 30): `<url> did not answer within 30 s`.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, quote_plus

from pydantic import Field, SecretStr

from connectors.actions.base import Action, ActionConfig, ActionContext
from cycles.errors import ActionError
from cycles.secrets import redact
from cycles.urls import normalise_url

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import URL

KEYS_TABLE = "radar_action_keys"
CONNECT_TIMEOUT = 10.0  # seconds to open a connection (no more than `timeout`)
# the declaration's placeholders; `${NAME}` is an environment reference, never one
_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_.]*)\}")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")  # PostgreSQL's $$ or $tag$ quote
_WORD = re.compile(r"[\w$]")
_BLANK = ("", " ", "\t", "\n", "\r")


class SqlConfig(ActionConfig):
    type: Literal["sql"] = "sql"
    url: SecretStr  # a SQLAlchemy URL; its password never shows in messages
    statement: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)  # may use {period}, {params.X}, ...
    timeout: float = Field(default=30, gt=0)  # seconds any one query may take


class SqlAction(Action):
    type = "sql"
    Config = SqlConfig
    exactly_once = True  # the key commits with the statement, in the target database
    config: SqlConfig

    def check(self, base_dir: Path) -> None:
        from sqlalchemy.exc import ArgumentError, NoSuchModuleError

        try:
            url = _resolve(self.config.url.get_secret_value(), base_dir)
            url.get_dialect()  # the driver is installed
        except (ArgumentError, ValueError):
            raise ActionError("url is not a valid SQLAlchemy URL") from None
        except (NoSuchModuleError, ImportError) as exc:
            raise ActionError(f"url: no driver for it here ({type(exc).__name__})") from None
        try:
            bind_placeholders(self.config.statement, url.get_backend_name(), lambda _: "")
        except _Refused as exc:
            raise ActionError(redact(f"statement: {exc}")) from None

    def run(self, context: ActionContext) -> float | None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError
        from sqlalchemy.pool import NullPool

        from connectors.actions.template import render
        from cycles.store import db

        name, timeout = self.config.name, self.config.timeout
        raw = self.config.url.get_secret_value()
        try:
            url = _resolve(raw, context.base_dir)
        except (ArgumentError, ValueError):
            # the parser's message quotes the whole URL, password included
            raise ActionError(f"action {name!r}: url is not a valid SQLAlchemy URL") from None
        fields = context.fields()

        def value(placeholder: str) -> Any:
            try:
                if placeholder.startswith("params."):
                    return context.params[placeholder[len("params.") :]]
                return fields[placeholder]
            except KeyError:
                raise _Refused(f"unknown placeholder {{{placeholder}}}") from None

        try:
            statement, binds = bind_placeholders(
                self.config.statement, url.get_backend_name(), value
            )
        except _Refused as exc:
            raise ActionError(redact(f"action {name!r}: statement: {exc}")) from None
        params = render(self.config.params, params=context.params, **fields)
        bound = {**fields, **{k: _bindable(v) for k, v in params.items()}, **binds}
        shown = url.set(query={}).render_as_string(hide_password=True)
        connect = min(CONNECT_TIMEOUT, timeout)
        engine = None
        try:
            args = db.timeout_args(url, timeout, connect)
            engine = create_engine(url, poolclass=NullPool, connect_args=args)
            return _once(engine, _mark(context.key, name), text(statement), bound)
        except (SQLAlchemyError, ImportError) as exc:
            late = db.said_late(exc, shown, timeout, connect)
            message = f"action {name!r}: {late or f'{shown}: {_describe(exc)}'}"
            raise ActionError(_hide(message, url.password)) from None
        finally:
            if engine is not None:
                engine.dispose()


# -- exactly once ------------------------------------------------------------------------------


class _Done(Exception):
    """The key is marked already: the statement ran in a committed transaction."""


@functools.cache
def _keys() -> sa.Table:
    import sqlalchemy as sa

    return sa.Table(
        KEYS_TABLE,
        sa.MetaData(),
        sa.Column("key", sa.String(700), primary_key=True),  # as long as radar's ledger keys
        sa.Column("reach", sa.Double, nullable=True),
        sa.Column("done_at", sa.DateTime, nullable=False),  # UTC
        mysql_charset="utf8mb4",
        mysql_collate="utf8mb4_bin",  # keys compare exactly, as on PostgreSQL and SQLite
        mysql_engine="InnoDB",
    )


def _mark(key: str, action: str) -> str:
    """The key a run of `action` marks: the context's key, which names the action."""
    return key if key.rsplit("/", 1)[-1] == action else f"{key}#{action}"


def _once(engine: sa.Engine, mark: str, statement: Any, bound: dict[str, Any]) -> float | None:
    """Mark the key, run the statement, record its reach: one transaction, on one connection."""
    import sqlalchemy as sa
    from sqlalchemy.exc import IntegrityError

    keys = _keys()
    with engine.connect() as conn:
        _ensure_table(conn, keys)
        try:
            with conn.begin():
                try:  # first, so that a concurrent run of the key waits here, then rolls back
                    now = datetime.now(UTC).replace(tzinfo=None)
                    conn.execute(sa.insert(keys).values(key=mark, done_at=now))
                except IntegrityError:
                    raise _Done from None
                result = conn.execute(statement, bound)
                count = result.rowcount
                result.close()
                reach = None if count is None or count < 0 else float(count)
                conn.execute(sa.update(keys).where(keys.c.key == mark).values(reach=reach))
            return reach
        except _Done:
            found = conn.execute(sa.select(keys.c.reach).where(keys.c.key == mark)).scalar_one()
            conn.rollback()
            return None if found is None else float(found)


def _ensure_table(conn: sa.Connection, keys: sa.Table) -> None:
    """Create radar's key table when missing (its own transaction: DDL commits on MySQL)."""
    import sqlalchemy as sa
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.schema import CreateTable

    there = sa.inspect(conn).has_table(keys.name)
    conn.rollback()
    if there:
        return
    try:
        conn.execute(CreateTable(keys, if_not_exists=True))
        conn.commit()
    except SQLAlchemyError:  # PostgreSQL: a concurrent CREATE of the same table may collide
        conn.rollback()
        there = sa.inspect(conn).has_table(keys.name)
        conn.rollback()
        if not there:
            raise


# -- placeholders as bind parameters -----------------------------------------------------------


class _Refused(ValueError):
    """A placeholder where a bound value cannot stand."""


def bind_placeholders(
    statement: str, dialect: str, value: Callable[[str], Any]
) -> tuple[str, dict[str, Any]]:
    """`statement` with each `{...}` placeholder a bind parameter, and the values to bind.

    `value(placeholder)` gives a placeholder's value (`params.usd`, `period`, ...). Quoted
    literals, comments and quoted names are found as `dialect` reads them (module docstring).
    """
    return _Binder(statement, dialect, value).rewrite()


class _Binder:
    def __init__(self, text: str, dialect: str, value: Callable[[str], Any]) -> None:
        self.text, self.value = text, value
        self.mysql, self.pg = dialect in ("mysql", "mariadb"), dialect == "postgresql"
        self.out: list[str] = []
        self.binds: dict[str, Any] = {}
        self.names: dict[str, str] = {}  # placeholder -> its bind name

    def rewrite(self) -> tuple[str, dict[str, Any]]:
        """Copy the statement piece by piece: comments and quoted text whole, placeholders bound."""
        text, i = self.text, 0
        while i < len(text):
            c = text[i]
            if (end := self._comment(i)) is not None:
                self.out.append(text[i:end])  # placeholders in comments stay as written
            elif c == "'" or (c == '"' and self.mysql):
                end = self._literal(i, c)
            elif c in '"`':
                end, _ = self._quoted_end(i, c, escapes=False)
                self._refuse_inside(i, end, "a quoted name")
                self.out.append(text[i:end])
            elif c == "$" and self.pg and (found := self._dollar(i)) is not None:
                end = found
            elif c == "{" and (match := _PLACEHOLDER.match(text, i)):
                end = self._bare(match)
            else:
                end = i + 1
                self.out.append(c)
            i = end
        return "".join(self.out), self.binds

    # -- pieces of SQL ----------------------------------------------------------------------------

    def _comment(self, i: int) -> int | None:
        """The end of the comment starting at `i` (`--`, `/* */`, MySQL's `#`), else None."""
        text = self.text
        if text.startswith("/*", i):
            return self._comment_end(i)
        dashes = text.startswith("--", i) and (not self.mysql or text[i + 2 : i + 3] in _BLANK)
        if dashes or (self.mysql and text[i] == "#"):  # MySQL: `--` then a space
            end = text.find("\n", i)
            return len(text) if end < 0 else end
        return None

    def _comment_end(self, i: int) -> int:
        """The end of the block comment at `i` (PostgreSQL's nest)."""
        text, depth, j = self.text, 0, i
        while j < len(text):
            if text.startswith("/*", j) and (self.pg or depth == 0):
                depth, j = depth + 1, j + 2
            elif text.startswith("*/", j):
                depth, j = depth - 1, j + 2
                if depth == 0:
                    return j
            else:
                j += 1
        return len(text)

    def _quoted_end(self, i: int, quote: str, *, escapes: bool) -> tuple[int, bool]:
        """The end of the quoted text at `i` and whether it is closed (a doubled quote stays
        inside; with `escapes`, so does a backslash and the character after it)."""
        text, j = self.text, i + 1
        while j < len(text):
            if escapes and text[j] == "\\":
                j += 2
            elif text[j] == quote:
                if text[j + 1 : j + 2] != quote:
                    return j + 1, True
                j += 2
            else:
                j += 1
        return len(text), False

    def _escapes(self, i: int) -> bool:
        """Whether backslashes escape in the literal at `i`: MySQL's, PostgreSQL's E'...'."""
        if self.mysql:
            return True
        prefix = self.text[i - 1 : i] if i >= 1 else ""
        before = self.text[i - 2 : i - 1] if i >= 2 else ""
        return self.pg and prefix in ("e", "E") and not (before and _WORD.match(before))

    def _literal(self, i: int, quote: str) -> int:
        """Copy the string literal at `i`, or bind it when it holds placeholders."""
        escapes = self._escapes(i)
        end, closed = self._quoted_end(i, quote, escapes=escapes)
        body = self.text[i + 1 : end - 1]
        if not closed or not _PLACEHOLDER.search(body):
            self.out.append(self.text[i:end])
            return end
        if i > 0 and _WORD.match(self.text[i - 1]):
            self._refuse(i, end, "a prefixed literal")
        parts, at = [], 0
        for match in _PLACEHOLDER.finditer(body):
            parts += [_unquote(body[at : match.start()], quote, escapes)]
            parts += [str(self.value(match.group(1)))]
            at = match.end()
        parts += [_unquote(body[at:], quote, escapes)]
        self._emit(f"__p_lit{len(self.binds)}", "".join(parts), end)
        return end

    def _dollar(self, i: int) -> int | None:
        """PostgreSQL's $tag$...$tag$ at `i`: copied, or bound when it holds placeholders."""
        if i > 0 and _WORD.match(self.text[i - 1]):
            return None  # part of a name such as a$b, or a positional $1
        opening = _DOLLAR.match(self.text, i)
        if opening is None:
            return None
        tag = opening.group(0)
        close = self.text.find(tag, opening.end())
        if close < 0:
            return None
        end, body = close + len(tag), self.text[opening.end() : close]
        if not _PLACEHOLDER.search(body):
            self.out.append(self.text[i:end])
            return end
        filled = _PLACEHOLDER.sub(lambda m: str(self.value(m.group(1))), body)
        self._emit(f"__p_lit{len(self.binds)}", filled, end)
        return end

    def _bare(self, match: re.Match[str]) -> int:
        placeholder, start, end = match.group(1), match.start(), match.end()
        before, after = self.text[start - 1 : start], self.text[end : end + 1]
        if (before and (_WORD.match(before) or before in ":.\\")) or (
            after and (_WORD.match(after) or after == ".")
        ):
            self._refuse(start, end, "a name or type")
        if placeholder not in self.names:
            base = "__p_" + re.sub(r"\W", "_", placeholder)
            name, n = base, 1
            while name in self.binds:
                n += 1
                name = f"{base}_{n}"
            self.names[placeholder] = name
            self.binds[name] = _bindable(self.value(placeholder))
        self._emit(self.names[placeholder], self.binds[self.names[placeholder]], end)
        return end

    def _emit(self, name: str, value: Any, end: int) -> None:
        """`:name` in the output (in parentheses before a `::` cast, which `:name` would eat)."""
        self.binds[name] = value
        cast = self.text[end : end + 1] == ":"
        self.out.append(f"(:{name})" if cast else f":{name}")

    # -- refusals ---------------------------------------------------------------------------------

    def _refuse_inside(self, i: int, end: int, what: str) -> None:
        if _PLACEHOLDER.search(self.text, i, end):
            self._refuse(i, end, what)

    def _refuse(self, start: int, end: int, what: str) -> None:
        found = _PLACEHOLDER.search(self.text, start, end)
        placeholder = found.group(0) if found else "a placeholder"
        around = self.text[max(0, start - 20) : end + 20].strip()
        raise _Refused(
            f"{placeholder} in {around!r} would be part of {what}: placeholders are bound as "
            "values, never pasted into the SQL (bind a value where a value goes)"
        )


_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def _unquote(text: str, quote: str, escapes: bool) -> str:
    """A literal's text as the database reads it: doubled quotes and (MySQL) backslash escapes."""
    if not escapes:
        return text.replace(quote * 2, quote)
    out, i = [], 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt if nxt in "%_" else nxt))
            i += 2
        elif c == quote and text[i + 1 : i + 2] == quote:
            out.append(quote)
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _resolve(raw: str, base_dir: Path) -> URL:
    """The URL with a plain scheme mapped to its driver and a relative SQLite path resolved."""
    from sqlalchemy.engine import make_url

    url = make_url(normalise_url(raw))
    database = url.database
    if (
        url.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).expanduser().is_absolute()
    ):
        url = url.set(database=str(base_dir / Path(database).expanduser()))
    return url


def _bindable(value: Any) -> Any:
    return json.dumps(value, default=str) if isinstance(value, dict) else value


def _describe(exc: BaseException) -> str:
    """`ProgrammingError: relation "x" does not exist`: the driver's error, first line only."""
    from cycles.store import db

    cause, lines = db.driver_exception(exc), db.driver_lines(exc)
    first = lines[0] if lines else ""
    if cause is exc and first.startswith("("):  # "(driver.Error) message" from SQLAlchemy
        first = first.split(") ", 1)[-1]
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def _hide(message: str, password: str | None) -> str:
    """`message` without the URL's password (raw or URL-quoted) or any remembered secret."""
    if password:
        for form in sorted({password, quote(password, safe=""), quote_plus(password)}, key=len)[
            ::-1
        ]:
            message = message.replace(form, "***")
    return redact(message)
