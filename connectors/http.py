"""JSON-over-HTTP APIs as metric sources: pages of row objects, followed through `next` links.

    connectors:
      crm_api:
        type: http
        base_url: https://crm.example.com/api
        headers: {Authorization: "Bearer ${CRM_TOKEN}"}
    metrics:
      referral_rate:
        connector: crm_api
        query:
          path: /v1/referrals               # appended to base_url
          params: {from: "{start}", to: "{end}"}
          records: data.items               # where the list of row objects is in the body
        period: month
        value: rate

`{start}` and `{end}` (in `path` and in string `params`) are the window's first day and the day
after its last period, as ISO dates. Each page's records are collected while the body holds a
`next` URL (key path `next:`; `next: null` turns it off) or the answer has a
`Link: <...>; rel="next"` header. Nested objects in records become dotted columns (`a.b`).

The headers and the `user:pw@` of base_url go to base_url's origin only: a next page or a
redirect elsewhere is refused. Each page, retries included, must arrive within `deadline`
seconds (60; `timeout` bounds each connect or read) and hold at most `max_bytes` (50 MiB).
"""

from __future__ import annotations

import builtins
import functools
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from connectors.base import (
    ENV_REFERENCE,
    Connector,
    ConnectorConfig,
    MetricQuery,
    SchemaError,
    Window,
)
from cycles.errors import ConnectorError
from cycles.secrets import redact

if TYPE_CHECKING:
    import httpx
    import pandas as pd

    from connectors.base import Checks, Measurement
    from cycles.declaration.model import MetricSpec


class HttpConfig(ConnectorConfig):
    type: Literal["http"] = "http"
    base_url: str
    headers: dict[str, SecretStr] = Field(default_factory=dict)  # may hold ${TOKEN} secrets
    timeout: float = Field(default=10, gt=0)  # seconds, per connect, read or write
    deadline: float = Field(default=60, gt=0)  # seconds for a whole page, retries included
    retries: int = Field(default=3, ge=0, le=20)
    backoff: float = Field(default=0.5, ge=0)  # seconds before the first retry, then doubling
    max_pages: int = Field(default=1000, ge=1)
    max_bytes: int = Field(default=50 * 2**20, ge=1)  # a larger page is refused

    @field_validator("base_url")
    @classmethod
    def _absolute_http_url(cls, value: str) -> str:
        if not value.strip().lower().startswith(("http://", "https://", ENV_REFERENCE)):
            raise ValueError("base_url must start with http:// or https://")
        return value.strip()

    def __repr__(self) -> str:  # a secret in base_url must not show up in a traceback either
        return redact(super().__repr__())

    __str__ = __repr__


class HttpQuery(MetricQuery):
    path: str
    params: dict[str, Any] = Field(default_factory=dict)
    records: str | None = None  # dotted key path of the list of records; None: the body is it
    next: str | None = "next"  # dotted key path of the next page's URL in the body
    filter: dict[str, Any] = Field(default_factory=dict)

    def __repr__(self) -> str:  # params may hold ${API_KEY} secrets
        return redact(super().__repr__())

    __str__ = __repr__


class MissingColumn(SchemaError):
    """A column named by the metric is in none of the records."""

    def __init__(self, message: str, *, key: str, column: str) -> None:
        super().__init__(message, key=key)
        self.column = column


class HttpConnector(Connector):
    type = "http"
    Config = HttpConfig
    Query: ClassVar[builtins.type[MetricQuery]] = HttpQuery
    config: HttpConfig

    def __init__(self, name: str, config: ConnectorConfig, **kwargs: Any) -> None:
        super().__init__(name, config, **kwargs)
        self._client: httpx.Client | None = None

    @property
    def client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            # `user:pw@` of base_url becomes the client's auth: sent on every page of its origin
            # (`send` goes nowhere else), and the URLs in error lines never hold it
            url = httpx.URL(self.config.base_url)
            self._client = httpx.Client(
                base_url=url.copy_with(userinfo=b""),
                headers={k: v.get_secret_value() for k, v in self.config.headers.items()},
                auth=(url.username, url.password) if url.userinfo else None,
                timeout=httpx.Timeout(self.config.timeout),
                follow_redirects=True,  # `send` follows them on base_url's origin only
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    # -- rows ------------------------------------------------------------------------------------
    def fetch(self, query: Any, window: Window, columns: Sequence[str]) -> pd.DataFrame:
        import pandas as pd

        records: list[dict[str, Any]] = []
        for body, where in self.pages(query, window):
            records.extend(self._records(body, query, where))
        wanted = list(dict.fromkeys([*columns, *query.filter]))
        if not records:
            return pd.DataFrame({c: pd.Series([], dtype="object") for c in wanted})
        nested = any(isinstance(v, dict) for record in records for v in record.values())
        frame = pd.json_normalize(records) if nested else pd.DataFrame.from_records(records)
        for column in wanted:
            if column not in frame.columns:
                shown = ", ".join(map(str, frame.columns[:20]))
                more = ", ..." if len(frame.columns) > 20 else ""
                raise MissingColumn(
                    _scrub(
                        f"column {column!r} not found in the records of connector {self.name!r} "
                        f"(GET {_path(query.path)}; columns: {shown}{more})"
                    ),
                    key="query" if column in query.filter and column not in columns else "columns",
                    column=column,
                )
        frame = frame[wanted]
        for column, expected in query.filter.items():
            values = expected if isinstance(expected, list) else [expected]
            frame = frame[frame[column].isin(values)]
        return frame.reset_index(drop=True)

    def measure(
        self, metric: MetricSpec, window: Window, checks: Checks | None = None
    ) -> Measurement:
        try:
            return super().measure(metric, window, checks)
        except MissingColumn as exc:  # point at the metric key that names the column
            keys = {column: key for key, column in reversed(metric.column_keys())}
            raise SchemaError(str(exc), key=keys.get(exc.column, exc.key)) from None

    def pages(self, query: HttpQuery, window: Window) -> Iterator[tuple[Any, str]]:
        """(JSON body, "GET /path") of each page, following `next` links on base_url's origin.

        Errors name the declared `path`, never the URL requested: base_url may be a secret.
        """
        from connectors._http import origin_text, same_origin, send

        start, end = window.start.isoformat(), window.end.isoformat()
        params = {k: _fill(v, start, end) for k, v in query.params.items()}
        what, path = f"connector {self.name!r}", _fill(query.path, start, end)
        home = self.client.base_url
        retry = functools.partial(
            send, self.client, what=what, retries=self.config.retries, backoff=self.config.backoff,
            deadline=self.config.deadline, max_bytes=self.config.max_bytes, origin=home,
            origin_key="base_url",
        )  # fmt: skip
        shown = _path(path)
        response = retry("GET", path, params=params, shown=shown)
        seen = {str(response.request.url)}
        for page in range(1, self.config.max_pages + 1):
            where = f"GET {shown}" + (f" (page {page})" if page > 1 else "")
            body = _json(response, f"{what}: {where}")
            yield body, where
            link = self._next_url(body, response, query, where)
            if link is None:
                return
            if not same_origin(link, home):  # the headers and params hold credentials
                raise ConnectorError(
                    _scrub(
                        f"{what}: next page {origin_text(link)}/… is on another origin than "
                        "base_url; refused (credentials stay with their host)"
                    )
                )
            # the next URL carries its own query; declared params fill in only what it lacks
            link = link.copy_merge_params({k: v for k, v in params.items() if k not in link.params})
            if str(link) in seen:
                return  # a page that points back at one already read: nothing more to read
            if page == self.config.max_pages:
                raise ConnectorError(
                    _scrub(
                        f"{what}: GET {shown}: more than {self.config.max_pages} "
                        "pages (raise max_pages, or narrow the query)"
                    )
                )
            seen.add(str(link))
            response = retry("GET", link, shown=f"{shown} (page {page + 1})")

    def _next_url(
        self, body: Any, response: httpx.Response, query: HttpQuery, where: str
    ) -> httpx.URL | None:
        """The next page: the body's `next` (relative to base_url) or the Link header's."""
        from connectors._http import MISSING, dig

        if query.next and isinstance(body, dict):
            value = dig(body, query.next)
            if isinstance(value, str) and value.strip():
                value = value.strip()
                if value.startswith("?"):  # a new query string for the same path
                    return response.request.url.copy_with(query=value[1:].encode())
                return self.client.base_url.join(value)
            if value is not MISSING and value is not None and value != "":
                raise ConnectorError(
                    _scrub(
                        f"connector {self.name!r}: {query.next!r} in the response body of "
                        f"{where} is {_kind(value)}, not a URL (set `next: null` in the query "
                        "to stop following it)"
                    )
                )
        link = response.links.get("next", {}).get("url")
        return response.request.url.join(link) if link else None

    def _records(self, body: Any, query: HttpQuery, where: str) -> list[dict[str, Any]]:
        from connectors._http import MISSING, dig

        name = self.name
        found = body if query.records is None else dig(body, query.records)
        if found is MISSING:
            raise ConnectorError(
                _scrub(
                    f"connector {name!r}: no key {query.records!r} in the response body of {where}"
                )
            )
        subject = f"the response body of {where}"
        if query.records is not None:
            subject = f"{query.records!r} in {subject}"
        if not isinstance(found, list):
            hint = " (set `records:` to the key path of the list)" if query.records is None else ""
            raise ConnectorError(
                _scrub(
                    f"connector {name!r}: {subject} is {_kind(found)}, not a list of records{hint}"
                )
            )
        for i, item in enumerate(found):
            if not isinstance(item, dict):
                raise ConnectorError(
                    _scrub(
                        f"connector {name!r}: item {i} of {subject} is {_kind(item)}, not an object"
                    )
                )
        return found


def _fill(value: Any, start: str, end: str) -> Any:
    """`{start}` and `{end}` in strings (also inside lists) become the window's ISO dates."""
    if isinstance(value, str):
        return value.replace("{start}", start).replace("{end}", end)
    if isinstance(value, list):
        return [_fill(v, start, end) for v in value]
    return value


def _json(response: httpx.Response, where: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        kind = response.headers.get("Content-Type", "no content type").split(";")[0]
        raise ConnectorError(
            _scrub(f"{where}: the response body is not JSON ({kind}: {exc})")
        ) from None


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number" if isinstance(value, int | float) else "a value")


def _scrub(text: str) -> str:
    """Redact secrets, percent-encoded ones too (records may echo a query string)."""
    from connectors._http import scrub

    return scrub(text)


def _path(path: str) -> str:
    from connectors._http import url_path

    return url_path(path)
