"""`sql` actions: one statement with bound parameters, in one transaction; reach = rowcount.

    actions:
      - name: flag-promoters
        type: sql
        url: postgresql://crm:${CRM_DB_PASSWORD}@db.example.com/crm
        statement: >
          INSERT INTO outreach (customer_id, campaign, incentive_usd)
          SELECT id, :key, :usd FROM customers WHERE nps >= 9
        params: {usd: "{params.incentive_usd}"}

Bound parameters: the rendered `params`, plus `:outcome`, `:period`, `:approach`, `:action`
and `:key` (the idempotency key); a declared param of the same name wins. Bind values rather
than writing `{params.X}` into the statement text (which is filled in too, as in every action
string). An object param is bound as its JSON text. A plain `postgresql://` or `mysql://` URL
uses the installed driver; a relative `sqlite:///` path is relative to the declaration.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote, quote_plus

from pydantic import Field, SecretStr

from connectors.actions.base import Action, ActionConfig, ActionContext
from cycles.errors import ActionError
from cycles.secrets import redact
from cycles.store.urls import normalise_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL


class SqlConfig(ActionConfig):
    type: Literal["sql"] = "sql"
    url: SecretStr  # a SQLAlchemy URL; its password never shows in messages
    statement: str = Field(min_length=1)
    params: dict[str, Any] = Field(default_factory=dict)  # may use {period}, {params.X}, ...


class SqlAction(Action):
    type = "sql"
    Config = SqlConfig
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

    def run(self, context: ActionContext) -> float | None:
        from sqlalchemy import create_engine, text
        from sqlalchemy.exc import ArgumentError, SQLAlchemyError
        from sqlalchemy.pool import NullPool

        name = self.config.name
        raw = self.config.url.get_secret_value()
        try:
            url = _resolve(raw, context.base_dir)
        except (ArgumentError, ValueError):
            # the parser's message quotes the whole URL, password included
            raise ActionError(f"action {name!r}: url is not a valid SQLAlchemy URL") from None
        spec = self.rendered(context)
        bound = {**context.fields(), **{k: _bindable(v) for k, v in spec["params"].items()}}
        shown = url.set(query={}).render_as_string(hide_password=True)
        engine = None
        try:
            engine = create_engine(url, poolclass=NullPool)
            with engine.begin() as conn:
                result = conn.execute(text(spec["statement"]), bound)
                count = result.rowcount
                result.close()
        except (SQLAlchemyError, ImportError) as exc:
            message = f"action {name!r}: {shown}: {_describe(exc)}"
            raise ActionError(_hide(message, url.password)) from None
        finally:
            if engine is not None:
                engine.dispose()
        return None if count is None or count < 0 else float(count)


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
    cause = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if cause is exc and first.startswith("("):  # "(driver.Error) message" from SQLAlchemy
        first = first.split(") ", 1)[-1]
    first = re.sub(r"\s*\(Background on this error at: [^)]*\)", "", first)
    return f"{type(cause).__name__}: {first}" if first else type(cause).__name__


def _hide(message: str, password: str | None) -> str:
    """`message` without the URL's password (raw or URL-quoted) or any remembered secret."""
    if password:
        for form in sorted({password, quote(password, safe=""), quote_plus(password)}, key=len)[
            ::-1
        ]:
            message = message.replace(form, "***")
    return redact(message)
