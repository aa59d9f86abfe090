"""The `http` connector and the retrying client, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from connectors import _http
from connectors._http import retry_after, send
from connectors.base import SchemaError, Window
from connectors.files import CsvConnector
from connectors.http import HttpConfig, HttpConnector, HttpQuery
from connectors.registry import connector_class
from cycles import secrets
from cycles.declaration.model import MetricSpec
from cycles.errors import ConnectorError
from cycles.periods import Cadence, Period

from httpserver import HttpTestServer, Received, Reply


@pytest.fixture
def server() -> Iterator[HttpTestServer]:
    with HttpTestServer() as started:
        yield started


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the connector asks for between attempts, in seconds, instead of sleeping them:
    asserting the delays asked for holds on a busy machine, where wall-clock windows do not."""
    asked: list[float] = []
    monkeypatch.setattr(_http, "send", functools.partial(send, sleep=asked.append))
    return asked


ROWS = [
    {"day": "2026-01-05", "rate": 0.1, "asked": 10, "referred": 1, "shop": "a"},
    {"day": "2026-01-31T23:30:00", "rate": 0.3, "asked": 10, "referred": 3, "shop": "b"},
    {"day": "2026-02-01", "rate": None, "asked": 20, "referred": 5, "shop": "a"},
    {"day": "2026-02-14", "rate": 0.5, "asked": 10, "referred": 5, "shop": "b"},
    {"day": "2026-03-31", "rate": 0.2, "asked": 5, "referred": 1, "shop": "a"},
    {"day": "2025-12-31", "rate": 9.0, "asked": 1, "referred": 1, "shop": "a"},  # before
    {"day": "2026-04-01", "rate": 9.0, "asked": 1, "referred": 1, "shop": "a"},  # after
]


def window(first: str = "2026-01", n: int = 3) -> Window:
    start = Period.parse(first, Cadence.monthly)
    return Window(tuple(start + i for i in range(n)))


def make(server: HttpTestServer, tmp_path: Path, **config: Any) -> HttpConnector:
    options = {"base_url": server.url, "backoff": 0.01, "timeout": 2.0, **config}
    return HttpConnector("crm_api", HttpConfig(**options), base_dir=tmp_path)


def fetch(connector: HttpConnector, columns: list[str] | None = None, **query: Any) -> pd.DataFrame:
    q = HttpQuery(**{"path": "/v1/rows", **query})
    try:
        return connector.fetch(q, window(), columns or ["day", "rate"])
    finally:
        connector.close()


# -- rows and pages ---------------------------------------------------------------------------------


def test_single_page_returns_only_the_requested_columns(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(200, {"data": {"items": ROWS[:2]}}))
    frame = fetch(make(server, tmp_path), records="data.items")
    assert list(frame.columns) == ["day", "rate"]
    assert frame["rate"].tolist() == [0.1, 0.3]
    assert [r.method for r in server.requests] == ["GET"]


def test_nested_objects_become_dotted_columns_and_filter_applies(server, tmp_path) -> None:
    rows = [{"day": "2026-01-02", "stats": {"rate": 0.4}, "shop": s} for s in "ab"]
    server.route("/v1/rows", Reply(200, rows))
    frame = fetch(make(server, tmp_path), ["day", "stats.rate"], filter={"shop": "b"})
    assert frame.to_dict("records") == [{"day": "2026-01-02", "stats.rate": 0.4, "shop": "b"}]


@pytest.mark.parametrize(
    ("base", "links"),
    [
        ("", ["/v1/rows?page=2", "{url}/v1/rows?page=3"]),  # absolute path, absolute URL
        ("/api", ["v1/rows?page=2", "?page=3"]),  # relative to base_url, a new query string
    ],
)
def test_pagination_by_body_next(server, tmp_path, base: str, links: list[str]) -> None:
    pages = [ROWS[0:2], ROWS[2:4], ROWS[4:]]
    server.route(
        f"{base}/v1/rows",
        Reply(200, {"items": pages[0], "next": links[0].format(url=server.url + base)}),
        Reply(200, {"items": pages[1], "next": links[1].format(url=server.url + base)}),
        Reply(200, {"items": pages[2], "next": None}),
    )
    connector = make(server, tmp_path, base_url=server.url + base)
    frame = fetch(connector, records="items", params={"limit": 2})
    assert frame["day"].tolist() == [r["day"] for r in ROWS]
    seen = server.requests
    assert [r.path for r in seen] == [f"{base}/v1/rows"] * 3
    assert [r.query.get("page") for r in seen] == [None, ["2"], ["3"]]
    assert all(r.query["limit"] == ["2"] for r in seen)  # declared params fill in what lacks


def test_pagination_by_link_header(server, tmp_path) -> None:
    server.route(
        "/v1/rows",
        Reply(200, ROWS[:3], headers={"Link": '</v1/rows?cursor=abc>; rel="next"'}),
        Reply(200, ROWS[3:], headers={"Link": '</v1/rows?cursor=zz>; rel="prev"'}),
    )
    frame = fetch(make(server, tmp_path))
    assert len(frame) == len(ROWS)
    assert [r.query.get("cursor") for r in server.requests] == [None, ["abc"]]


def test_a_next_link_back_to_a_page_already_read_stops(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(200, {"items": ROWS[:2], "next": "/v1/rows"}))
    frame = fetch(make(server, tmp_path), records="items")
    assert len(frame) == 2 and len(server.requests) == 1


def test_more_pages_than_max_pages_is_an_error(server, tmp_path) -> None:
    def endless(request: Received) -> Reply:
        page = int(request.query.get("page", ["1"])[0])
        return Reply(200, {"items": ROWS[:1], "next": f"/v1/rows?page={page + 1}"})

    server.route("/v1/rows", endless)
    with pytest.raises(ConnectorError) as info:
        fetch(make(server, tmp_path, max_pages=3), records="items")
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/rows: more than 3 pages (raise max_pages, or narrow the query)"
    )
    assert len(server.requests) == 3


def test_start_and_end_reach_the_server(server, tmp_path) -> None:
    server.route("/v1/2026-01-01/rows", Reply(200, []))
    params = {"from": "{start}", "to": "{end}", "n": 5, "shops": ["a", "b"]}
    frame = fetch(make(server, tmp_path), path="/v1/{start}/rows", params=params)
    assert frame.empty and list(frame.columns) == ["day", "rate"]
    (request,) = server.requests
    assert request.query == {
        "from": ["2026-01-01"], "to": ["2026-04-01"], "n": ["5"], "shops": ["a", "b"],
    }  # fmt: skip


# -- retries --------------------------------------------------------------------------------------


def test_a_server_error_is_retried(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(500, "boom"), Reply(502), Reply(200, ROWS[:2]))
    frame = fetch(make(server, tmp_path))
    assert len(frame) == 2 and len(server.requests) == 3


def test_a_dropped_connection_is_retried(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(drop=True), Reply(200, ROWS[:2]))
    assert len(fetch(make(server, tmp_path))) == 2
    assert len(server.requests) == 2


def test_429_waits_as_long_as_retry_after_says(server, tmp_path, waits) -> None:
    server.route("/v1/rows", Reply(429, headers={"Retry-After": "1"}), Reply(200, ROWS[:1]))
    assert len(fetch(make(server, tmp_path))) == 1
    assert waits == [1.0] and len(server.requests) == 2


def test_gives_up_after_retries_with_one_line(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(503, {"error": "maintenance"}))
    with pytest.raises(ConnectorError) as info:
        fetch(make(server, tmp_path, retries=3), params={"since": "{start}"})
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/rows: HTTP 503 after 4 attempts"
        ' (body: {"error": "maintenance"})'
    )
    assert len(server.requests) == 4


def test_a_client_error_is_not_retried(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(404, {"detail": "Not found."}))
    with pytest.raises(ConnectorError, match=r"GET /v1/rows: HTTP 404 after 1 attempt \(body"):
        fetch(make(server, tmp_path))
    assert len(server.requests) == 1


def test_timeout_is_a_clear_error_after_retries(server, tmp_path, waits) -> None:
    server.route("/v1/rows", Reply(200, [], delay=1.5))
    with pytest.raises(ConnectorError) as info:
        fetch(make(server, tmp_path, timeout=0.2, retries=1))
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/rows: ReadTimeout (timed out) after 2 attempts"
    )
    assert len(server.requests) == 2
    [wait] = waits  # one backoff (0.01 s with jitter) between the attempts, none after the last
    assert 0.005 <= wait <= 0.01


def test_connection_refused(tmp_path) -> None:
    with HttpTestServer() as server:
        url = server.url  # a port that is free again once the server stops
    connector = HttpConnector(
        "crm_api", HttpConfig(base_url=url, retries=1, backoff=0.01), base_dir=tmp_path
    )
    with pytest.raises(ConnectorError, match=r"^connector 'crm_api': GET /v1/rows: ConnectError"):
        fetch(connector)


def test_backoff_doubles_with_jitter_and_retry_after_is_capped(server) -> None:
    server.route("/a", Reply(500))
    server.route("/b", Reply(429, headers={"Retry-After": "120"}), Reply(200, []))
    waits: list[float] = []
    with httpx.Client(base_url=server.url) as client:
        with pytest.raises(ConnectorError, match="HTTP 500 after 5 attempts"):
            send(client, "GET", "/a", what="x", retries=4, backoff=1, max_backoff=3,
                 sleep=waits.append)  # fmt: skip
        assert 0.5 <= waits[0] <= 1 and 1 <= waits[1] <= 2 and 2 <= waits[2] <= 3
        assert waits[3] <= 3  # capped
        waits.clear()
        send(client, "GET", "/b", what="x", max_backoff=7, sleep=waits.append)
        assert waits == [7]


def test_retry_after_parses_seconds_and_http_dates() -> None:
    assert retry_after("2") == 2 and retry_after(" 0.5 ") == 0.5 and retry_after("-3") == 0
    assert retry_after(None) is None and retry_after("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 28 <= (retry_after(later) or 0) <= 30
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


# -- body errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "records", "message"),
    [
        (Reply(200, "<html>login</html>"), None,
         "connector 'crm_api': GET /v1/rows: the response body is not JSON "
         "(text/plain: Expecting value: line 1 column 1 (char 0))"),
        (Reply(200, {"data": {}}), "data.items",
         "connector 'crm_api': no key 'data.items' in the response body of GET /v1/rows"),
        (Reply(200, {"data": {"items": {"a": 1}}}), "data.items",
         "connector 'crm_api': 'data.items' in the response body of GET /v1/rows is an object, "
         "not a list of records"),
        (Reply(200, {"items": []}), None,
         "connector 'crm_api': the response body of GET /v1/rows is an object, not a list of "
         "records (set `records:` to the key path of the list)"),
        (Reply(200, [{"day": "2026-01-01"}, 3]), None,
         "connector 'crm_api': item 1 of the response body of GET /v1/rows is a number, "
         "not an object"),
        (Reply(200, {"items": [], "next": 2}), "items",
         "connector 'crm_api': 'next' in the response body of GET /v1/rows is a number, not a "
         "URL (set `next: null` in the query to stop following it)"),
    ],
)  # fmt: skip
def test_body_errors_are_one_clear_line(
    server, tmp_path, reply: Reply, records: str | None, message: str
) -> None:
    server.route("/v1/rows", reply)
    with pytest.raises(ConnectorError) as info:
        fetch(make(server, tmp_path), records=records)
    assert str(info.value) == message


def test_next_null_turns_body_pagination_off(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(200, {"items": ROWS[:1], "next": 2}))
    assert len(fetch(make(server, tmp_path), records="items", next=None)) == 1


def test_missing_column_is_a_schema_error_on_the_metric_key(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(200, ROWS))
    connector = make(server, tmp_path)
    assert connector.columns(HttpQuery(path="/v1/rows")) is None  # no request at preflight
    metric = MetricSpec(
        connector="crm_api", period="day", value="score", query={"path": "/v1/rows"}
    )
    with pytest.raises(SchemaError) as info:
        connector.measure(metric, window())
    assert info.value.key == "value"
    assert str(info.value).startswith(
        "column 'score' not found in the records of connector 'crm_api' (GET /v1/rows; columns: "
    )
    with pytest.raises(SchemaError) as info:
        fetch(connector, ["day"], filter={"region": "eu"})
    assert info.value.key == "query"


# -- secrets --------------------------------------------------------------------------------------


def test_secrets_reach_the_server_but_never_an_error_or_repr(server, tmp_path, monkeypatch) -> None:
    token, key = "tok-7f3a9c1e55", "key-0d9e8b7a66"
    for value in (token, key):
        secrets.remember(value)  # as the loader does for ${NAME} values
    server.route(f"/v1/{key}/rows", Reply(401, f"bad credentials: Bearer {token}, api_key={key}"))
    connector = make(server, tmp_path, headers={"Authorization": f"Bearer {token}"})
    query = HttpQuery(path=f"/v1/{key}/rows", params={"api_key": key})
    with pytest.raises(ConnectorError) as info:
        connector.fetch(query, window(), ["day"])
    connector.close()
    (request,) = server.requests
    assert request.header("Authorization") == f"Bearer {token}"
    assert request.query["api_key"] == [key]
    text = " ".join([str(info.value), repr(connector.config), repr(query), str(query)])
    assert token not in text and key not in text
    assert str(info.value) == (
        "connector 'crm_api': GET /v1/***/rows: HTTP 401 after 1 attempt "
        "(body: bad credentials: Bearer ***, api_key=***)"
    )


# -- measure --------------------------------------------------------------------------------------


def reference(rows: list[dict[str, Any]], metric: MetricSpec, win: Window) -> list[Any]:
    """Per period, straight from pandas: the mean of `value`, or sum(num) / sum(den)."""
    frame = pd.DataFrame(rows)
    stamps = pd.to_datetime(frame["day"], format="ISO8601")
    out = []
    for period in win.periods:
        inside = frame[(stamps >= pd.Timestamp(period.start)) & (stamps < pd.Timestamp(period.end))]
        if metric.value:
            mean = inside[metric.value].astype(float).mean()
            out.append((str(period), None if pd.isna(mean) else mean, len(inside)))
        else:
            num, den = inside[metric.numerator].sum(), inside[metric.denominator].sum()
            out.append((str(period), num / den if den else None, len(inside)))
    return out


@pytest.mark.parametrize(
    "metric",
    [
        MetricSpec(connector="crm_api", period="day", value="rate", query={"path": "/v1/rows"}),
        MetricSpec(connector="crm_api", period="day", numerator="referred", denominator="asked",
                   query={"path": "/v1/rows", "records": "items"}),
    ],
    ids=["mean", "proportion"],
)  # fmt: skip
def test_measure_matches_pandas_and_the_csv_connector(server, tmp_path, metric) -> None:
    records = metric.query.get("records")
    pages = [ROWS[:3], ROWS[3:5], ROWS[5:]]
    replies = []
    for i, page in enumerate(pages):
        link = {"Link": f'</v1/rows?page={i + 2}>; rel="next"'} if i < len(pages) - 1 else {}
        replies.append(Reply(200, {"items": page} if records else page, headers=link))
    server.route("/v1/rows", *replies)
    connector = make(server, tmp_path)
    got = connector.measure(metric, window()).values
    connector.close()
    expected = reference(ROWS, metric, window())
    assert [(v.period, v.rows) for v in got] == [(p, n) for p, _, n in expected]
    assert [v.value for v in got] == pytest.approx([float(v) for _, v, _ in expected])
    pd.DataFrame(ROWS).to_csv(tmp_path / "rows.csv", index=False)
    csv = CsvConnector("crm_api", CsvConnector.Config(path="rows.csv"), base_dir=tmp_path)
    assert got == csv.measure(metric.model_copy(update={"query": {}}), window()).values


def test_measure_of_no_records_has_no_values(server, tmp_path) -> None:
    server.route("/v1/rows", Reply(200, []))
    metric = MetricSpec(connector="crm_api", period="day", value="rate", query={"path": "/v1/rows"})
    values = make(server, tmp_path).measure(metric, window()).values
    assert [(v.value, v.rows) for v in values] == [(None, 0)] * 3


def test_config_rejects_a_base_url_that_is_not_http() -> None:
    with pytest.raises(ValueError, match="base_url must start with http:// or https://"):
        HttpConfig(base_url="ftp://example.com")
    assert connector_class("http") is HttpConnector
