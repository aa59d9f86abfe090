"""Source faults: each ends in one clear line or a `hold` with the reason, never a wrong decision
and never half a cycle in the history."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from cycles.cli import main
from cycles.store import Store

from conftest import months, write_declaration, write_monthly_csv

PERIOD = "2026-02"
FLAT = dict.fromkeys(months("2025-01", 14), 0.18)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


@pytest.fixture
def slow_server() -> Iterator[str]:
    """An HTTP server that accepts connections and never answers."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _csv(decl: Path) -> Path:
    return decl.parent / "data" / "rate.csv"


def drop_file(decl: Path) -> None:
    _csv(decl).unlink()


def rename_value_column(decl: Path) -> None:
    path = _csv(decl)
    path.write_text(path.read_text().replace("day,region,rate,", "day,region,ratio,", 1))


def drop_period_column(decl: Path) -> None:
    path = _csv(decl)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(",".join(line.split(",")[1:]) for line in lines) + "\n")


def text_in_values(decl: Path) -> None:
    path = _csv(decl)
    lines = path.read_text().splitlines()
    last = [i for i, line in enumerate(lines) if line.startswith(PERIOD)][-1]
    cells = lines[last].split(",")
    cells[2] = "twelve"
    lines[last] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


def garbage_dates(decl: Path) -> None:
    path = _csv(decl)
    path.write_text(path.read_text().replace(f"{PERIOD}-", "sometime-", 1))


def header_only(decl: Path) -> None:
    path = _csv(decl)
    path.write_text(path.read_text().splitlines()[0] + "\n")


def database_down(decl: Path) -> None:
    decl.write_text(
        decl.read_text()
        .replace(
            "type: csv", f"type: sql\n    url: postgresql://radar:pw@127.0.0.1:{closed_port()}/x"
        )
        .replace("    path: data/rate.csv\n", "")
        .replace("    value: rate\n", "    value: rate\n    query: {table: rates}\n")
    )


def missing_table(decl: Path) -> None:
    db = decl.parent / "rates.db"
    import sqlite3

    sqlite3.connect(db).close()
    decl.write_text(
        decl.read_text()
        .replace("type: csv", "type: sql\n    url: sqlite:///rates.db")
        .replace("    path: data/rate.csv\n", "")
        .replace("    value: rate\n", "    value: rate\n    query: {table: rates}\n")
    )


def http_timeout(url: str) -> Callable[[Path], None]:
    def fault(decl: Path) -> None:
        decl.write_text(
            decl.read_text()
            .replace(
                "type: csv",
                f"type: http\n    base_url: {url}\n    timeout: 0.3\n    retries: 1\n    backoff: 0.01",
            )
            .replace("    path: data/rate.csv\n", "")
            .replace("    value: rate\n", "    value: rate\n    query: {path: /rates}\n")
        )

    return fault


# (id, fault, exit code, substrings of the one stderr line, or of the hold's reasons)
CASES = [
    ("file missing", drop_file, 2, ["connectors.crm.path: file not found"]),
    ("column renamed", rename_value_column, 2, ["metrics.rate.value: column 'rate' not found"]),
    ("period column gone", drop_period_column, 2, ["metrics.rate.period: column 'day' not found"]),
    ("dates that are not dates", garbage_dates, 1, ["metric 'rate': column 'day'", "not ISO dates"]),
    ("text among the numbers", text_in_values, 0, ["data check failed: radar_values_are_numbers on rate", "'twelve'"]),
    ("no rows at all", header_only, 0, ["no value of rate for 2026-02"]),
    ("database down", database_down, 1, ["connector 'crm'", "cannot connect", "***"]),
    ("table missing", missing_table, 2, ["metrics.rate.query.table", "not found"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("fault", "code", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_source_fault(
    workdir: Path,
    capsys: pytest.CaptureFixture[str],
    fault: Callable[[Path], None],
    code: int,
    expected: list[str],
) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", FLAT)
    decl = write_declaration(workdir)
    fault(decl)
    assert main(["run", str(decl), "--period", PERIOD, "--json"]) == code
    _check(capsys, code, expected)


def test_http_timeout(workdir: Path, capsys: pytest.CaptureFixture[str], slow_server: str) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", FLAT)
    decl = write_declaration(workdir)
    http_timeout(slow_server)(decl)
    assert main(["run", str(decl), "--period", PERIOD, "--json"]) == 1
    _check(capsys, 1, ["connector 'crm': GET /rates", "Timeout"])


def test_history_database_down(
    workdir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_monthly_csv(workdir / "data" / "rate.csv", FLAT)
    decl = write_declaration(workdir)
    monkeypatch.setenv(
        "RADAR_DATABASE_URL", f"postgresql://radar:hist-pw@127.0.0.1:{closed_port()}/h"
    )
    assert main(["run", str(decl), "--period", PERIOD]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "history database" in err and "hist-pw" not in err


def _check(capsys: pytest.CaptureFixture[str], code: int, expected: list[str]) -> None:
    out, err = capsys.readouterr()
    if code == 0:
        record = json.loads(out)
        assert record["decision"] == "hold", record["reasons"]
        text = " ".join(record["reasons"])
    else:
        assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
        text = err
    for part in expected:
        assert part in text, text
    stored = Store().get_cycle("refer", PERIOD)
    if code == 2:
        assert stored is None  # nothing runs on a declaration error
    elif stored is not None:  # complete, or stopped at a recorded failed stage: never half a stage
        assert stored.decision in (None, "hold")
        assert stored.status in ("failed", "open", "reviewed")
        if stored.decision is None:
            assert stored.stage_runs[-1].status == "failed"
