"""CSV and Parquet connectors: only the needed columns, rows into periods, means and proportions."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd
import pytest

from connectors.base import Checks, SchemaError, Window
from connectors.files import CsvConnector, ParquetConnector
from connectors.registry import UnknownType, connector_class, known_types
from cycles.declaration import load_yaml
from cycles.declaration.model import MetricSpec
from cycles.engine import run_cycle
from cycles.errors import ConnectorError
from cycles.periods import Cadence, Period

from conftest import months, write_declaration, write_monthly_csv


def window(first: str, n: int) -> Window:
    start = Period.parse(first, Cadence.monthly)
    return Window(tuple(start + i for i in range(n)))


ROWS = pd.DataFrame(
    {
        "ts": ["2026-01-31T23:30:00", "2026-02-01", "2026-02-15 12:00", "2026-02-28", "2026-03-01",
               "2025-12-31", "2026-04-01"],
        "shop": ["a", "a", "b", "b", "a", "a", "a"],
        "rate": [0.1, 0.2, 0.4, None, 0.3, 9.0, 9.0],
        "num": [1, 2, 4, 0, 3, 9, 9],
        "den": [10, 10, 10, 10, 10, 10, 10],
        "wide": ["x"] * 7,
    }
)  # fmt: skip


@pytest.fixture(params=["csv", "parquet"])
def connector(request: pytest.FixtureRequest, tmp_path: Path) -> CsvConnector | ParquetConnector:
    if request.param == "csv":
        ROWS.to_csv(tmp_path / "rows.csv", index=False)
        return CsvConnector("src", CsvConnector.Config(path="rows.csv"), base_dir=tmp_path)
    frame = ROWS.assign(ts=pd.to_datetime(ROWS["ts"], format="mixed"))
    frame.to_parquet(tmp_path / "rows.parquet")
    return ParquetConnector("src", ParquetConnector.Config(path="rows.parquet"), base_dir=tmp_path)


def test_mean_per_period_in_half_open_intervals(connector: CsvConnector) -> None:
    metric = MetricSpec(connector="src", period="ts", value="rate")
    values = connector.measure(metric, window("2026-01", 3)).values
    assert [v.period for v in values] == ["2026-01", "2026-02", "2026-03"]
    assert [v.value for v in values] == pytest.approx([0.1, 0.3, 0.3])  # null skipped in the mean
    assert [v.rows for v in values] == [1, 3, 1]  # rows outside the window are not counted


def test_proportion_is_a_ratio_of_sums(connector: CsvConnector) -> None:
    metric = MetricSpec(connector="src", period="ts", numerator="num", denominator="den")
    values = connector.measure(metric, window("2026-02", 2)).values
    assert values[0].value == pytest.approx(6 / 30) and values[0].numerator == 6
    assert values[0].denominator == 30 and values[1].value == pytest.approx(0.3)


def test_empty_period_has_no_value(connector: CsvConnector) -> None:
    metric = MetricSpec(connector="src", period="ts", value="rate")
    values = connector.measure(metric, window("2026-05", 1)).values
    assert values[0].value is None and values[0].rows == 0


def test_filter(connector: CsvConnector) -> None:
    metric = MetricSpec(connector="src", period="ts", value="rate", query={"filter": {"shop": "b"}})
    values = connector.measure(metric, window("2026-02", 1)).values
    assert values[0].value == pytest.approx(0.4) and values[0].rows == 2


def test_checks_see_only_the_period_rows_and_needed_columns(connector: CsvConnector) -> None:
    from cycles.checks import evaluate, parse_expectation

    seen: list[pd.DataFrame] = []

    def spy(frame: pd.DataFrame, specs: list, *, metric: str) -> list:
        seen.append(frame)
        return evaluate(frame, specs, metric=metric)

    spec = parse_expectation({"expect_column_values_to_not_be_null": {"column": "rate"}})
    metric = MetricSpec(connector="src", period="ts", value="rate")
    measured = connector.measure(
        metric, window("2026-01", 2), Checks("rate", [spec], evaluator=spy)
    )
    assert list(seen[0].columns) == ["rate"] and len(seen[0]) == 3
    assert measured.checks[0].success is False and measured.checks[0].unexpected_count == 1


def test_missing_column_is_a_schema_error(connector: CsvConnector) -> None:
    metric = MetricSpec(connector="src", period="when", value="rate")
    with pytest.raises(SchemaError) as info:
        connector.measure(metric, window("2026-01", 1))
    assert info.value.key == "period" and "'when'" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    connector = CsvConnector("src", CsvConnector.Config(path="gone.csv"), base_dir=tmp_path)
    with pytest.raises(SchemaError, match="file not found") as info:
        connector.columns(None)
    assert info.value.key == "path"


def test_timezone_aware_timestamps(tmp_path: Path) -> None:
    (tmp_path / "tz.csv").write_text(
        "ts,v\n2026-01-31T23:30:00-02:00,1\n2026-01-31T22:00:00+00:00,2\n"
    )
    connector = CsvConnector("src", CsvConnector.Config(path="tz.csv"), base_dir=tmp_path)
    values = connector.measure(
        MetricSpec(connector="src", period="ts", value="v"), window("2026-01", 2)
    ).values
    assert [v.value for v in values] == [2.0, 1.0]  # 23:30 at -02:00 is February in UTC


def test_registry_lists_builtins_and_rejects_unknown() -> None:
    assert {"csv", "parquet"} <= set(known_types("radar.connectors"))
    assert connector_class("csv") is CsvConnector
    with pytest.raises(
        UnknownType, match=r"known: .*csv.*a plugin providing it may not be installed"
    ):
        connector_class("excel")


def test_a_file_that_is_not_utf8_is_one_connector_error(tmp_path: Path) -> None:
    text = "ts,v\n2026-01-05,0.5\n"
    (tmp_path / "bom.csv").write_bytes(b"\xff\xfe" + text.encode("utf-16-le"))
    (tmp_path / "late.csv").write_bytes(text.encode() + b"2026-01-06,\xe9\n")  # a latin-1 byte
    metric = MetricSpec(connector="src", period="ts", value="v")
    for name in ("bom.csv", "late.csv"):  # in the header (columns) or in the rows (fetch)
        connector = CsvConnector("src", CsvConnector.Config(path=name), base_dir=tmp_path)
        with pytest.raises(ConnectorError) as info:
            connector.measure(metric, window("2026-01", 1))
        message = str(info.value)
        assert message.startswith(f"connector 'src': cannot read {tmp_path / name}: ")
        assert "not utf-8 text (byte 0x" in message and "encoding: key" in message
        assert "\n" not in message
    latin = CsvConnector("src", CsvConnector.Config(path="late.csv", encoding="latin-1"),
                         base_dir=tmp_path)  # fmt: skip
    assert latin.measure(metric, window("2026-01", 1)).values[0].value == 0.5


def test_infinite_values_are_skipped_and_fail_the_numbers_check(tmp_path: Path) -> None:
    (tmp_path / "inf.csv").write_text(
        "ts,v,n,d\n2026-01-05,0.2,1,10\n2026-01-06,inf,inf,10\n"
        "2026-02-05,inf,1e308,1e-320\n2026-02-06,-inf,1,1e-320\n"
    )
    connector = CsvConnector("src", CsvConnector.Config(path="inf.csv"), base_dir=tmp_path)
    checks = Checks("v")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from numpy on the terminal
        mean = connector.measure(MetricSpec(connector="src", period="ts", value="v"),
                                 window("2026-01", 2), checks)  # fmt: skip
        ratio = connector.measure(MetricSpec(connector="src", period="ts", numerator="n",
                                             denominator="d"), window("2026-01", 2))  # fmt: skip
    assert [v.value for v in mean.values] == [0.2, None]  # inf skipped like text: nothing left
    [check] = mean.checks
    assert not check.success and check.unexpected_count == 2
    assert "2 of 2 values of 'v' are not finite numbers (e.g. 'inf')" in (check.message or "")
    assert ratio.values[0].value == pytest.approx(1 / 20)  # an inf numerator counts as missing
    assert ratio.values[1].value is None  # 1e308 / 2e-320 is not a finite number


def test_sums_that_overflow_still_average(tmp_path: Path) -> None:
    (tmp_path / "huge.csv").write_text("ts,v\n2026-01-05,1e308\n2026-01-06,1.7e308\n")
    connector = CsvConnector("src", CsvConnector.Config(path="huge.csv"), base_dir=tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        values = connector.measure(MetricSpec(connector="src", period="ts", value="v"),
                                   window("2026-01", 1)).values  # fmt: skip
    assert values[0].value == pytest.approx(1.35e308)


# -- a file cut short -----------------------------------------------------------------------------


def _cut_inside_last_value(path: Path) -> str:
    """The CSV's text with its last row cut inside the rate (0.182000 → 0.1), no line end."""
    text = path.read_text()
    last = text.rstrip("\n").rsplit("\n", 1)[1]
    day, region, rate = last.split(",")[:3]
    assert float(rate) > 0.15
    return text[: text.rindex(last)] + f"{day},{region},0.1"


def test_a_csv_cut_inside_its_last_row_holds_the_review(workdir: Path) -> None:
    data = write_monthly_csv(
        workdir / "data" / "rate.csv",
        {m: 0.18 + 0.004 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-09", 13))},
    )
    cut = _cut_inside_last_value(data)
    outcome = load_yaml(write_declaration(workdir))

    data.write_text(cut)  # an export that stopped inside its last number
    held = run_cycle(outcome, "2025-09", store=None)
    assert held.decision == "hold"
    assert any(
        "radar_file_complete on rate: data/rate.csv: the last line has no line end: the file "
        "may be cut short (truncated export?)" in reason
        for reason in held.reasons
    ), held.reasons
    [failed] = [c for c in held.checks.results if not c.success]
    assert failed.expectation == "radar_file_complete" and failed.metric == "rate"

    data.write_text(cut + "\n")  # the same rows, ended: a short value, but a whole file
    whole = run_cycle(outcome, "2025-09", store=None)
    assert whole.decision is not None and whole.decision != "hold", whole.reasons
    assert whole.checks.failed == 0
    assert not any("cut short" in reason for reason in whole.reasons)
    assert whole.result_value == held.result_value  # the check holds the review, not the value


@pytest.mark.parametrize(
    ("encoding", "ending", "complete"),
    [
        ("utf-8", "\n", True),
        ("utf-8", "\r\n", True),
        ("utf-8", "\r", True),
        ("utf-8", "", False),
        ("utf-8-sig", "", False),
        ("utf-16", "\n", True),
        ("utf-16", "", False),
        ("utf-16-be", "\r\n", True),
        ("latin-1", "", False),
    ],
)
def test_a_csv_without_a_final_line_end_fails_the_complete_check(
    tmp_path: Path, encoding: str, ending: str, complete: bool
) -> None:
    text = "ts,v\n2026-01-05,0.5\n2026-01-06,803".replace("\n", ending or "\n") + ending
    (tmp_path / "x.csv").write_bytes(text.encode(encoding))
    config = CsvConnector.Config(path="x.csv", encoding=encoding)
    connector = CsvConnector("src", config, base_dir=tmp_path)
    metric = MetricSpec(connector="src", period="ts", value="v")
    measured = connector.measure(metric, window("2026-01", 1), Checks("v"))
    assert measured.values[0].value == pytest.approx((0.5 + 803) / 2)
    if complete:
        assert measured.checks == []
    else:
        [check] = measured.checks
        assert (check.expectation, check.metric, check.success) == (
            "radar_file_complete",
            "v",
            False,
        )
        assert check.message == (
            "x.csv: the last line has no line end: the file may be cut short (truncated export?)"
        )


def test_parquet_has_no_complete_check(tmp_path: Path) -> None:
    ROWS.assign(ts=pd.to_datetime(ROWS["ts"], format="mixed")).to_parquet(tmp_path / "r.parquet")
    connector = ParquetConnector(
        "src", ParquetConnector.Config(path="r.parquet"), base_dir=tmp_path
    )
    metric = MetricSpec(connector="src", period="ts", value="rate")
    assert connector.measure(metric, window("2026-02", 1), Checks("rate")).checks == []
