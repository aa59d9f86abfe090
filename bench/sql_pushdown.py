"""What pushing a metric's work down to the database buys: radar's SQL connector vs hand-written SQL
vs reading the whole table into pandas.

Data: a fact table (id, ts over 24 months, customer_id, region, amount with ~0.1 % nulls, status),
5 million rows by default, with an index on ts, in PostgreSQL (`RADAR_BENCH_POSTGRES_URL`, default
postgresql://postgres@127.0.0.1:5432/test; loaded with COPY) and in SQLite (a file under
$TMPDIR/radar-bench/; loaded with executemany in large transactions). The data is generated once
and reused while the table holds the expected number of rows (`--regenerate` rebuilds it,
`--drop` removes it at the end).

Workload, as a RADAR cycle's Assessment asks it: 24 monthly periods, per period the row count and
the mean of amount, and four checks on the last period's rows (amount not null, amount between 0
and 1000, status in a set, id unique). Three ways:
  radar  `SqlConnector.measure` (one GROUP BY for the window, one aggregate query for the checks);
  hand   the same figures from the queries one would write by hand, through the bare driver
         (PostgreSQL date_trunc, SQLite substr; COUNT FILTER; GROUP BY id HAVING COUNT(*) > 1);
  naive  `pandas.read_sql` of the whole table, then `label_periods`, `aggregate` and `evaluate`.
Each way runs in its own subprocess: time is the median wall time of `--reps` runs after one
warm-up (naive: `--naive-reps` runs, no warm-up); memory is the peak RSS of that subprocess
(`ru_maxrss`) minus its peak RSS once its imports are done and its connection is open, i.e. what
the work itself added. Targets: radar / hand <= 1.3 and radar's memory < 300 MB.

Run: .venv/bin/python bench/sql_pushdown.py [--rows 5000000] [--reps 5] [--naive-reps 1]
     [--databases postgresql sqlite] [--skip-naive] [--regenerate] [--drop] [--strict]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PG_URL = os.environ.get("RADAR_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CACHE = Path(tempfile.gettempdir()) / "radar-bench"
FIRST, MONTHS, CURRENT = date(2024, 1, 1), 24, (date(2025, 12, 1), date(2026, 1, 1))
STATUSES = ["paid", "refunded", "pending"]
CHECKS = [
    ("expect_column_values_to_not_be_null", {"column": "amount"}),
    ("expect_column_values_to_be_between", {"column": "amount", "min_value": 0, "max_value": 1000}),
    ("expect_column_values_to_be_in_set", {"column": "status", "value_set": STATUSES}),
    ("expect_column_values_to_be_unique", {"column": "id"}),
]
RATIO_TARGET, MEMORY_TARGET_MB = 1.3, 300


def table_name(rows: int) -> str:
    return f"radar_bench_facts_{rows}"


def sqlite_url(rows: int) -> str:
    return f"sqlite:///{CACHE / f'facts-{rows}.db'}"


# -- data ---------------------------------------------------------------------------------------


def chunks(rows: int, size: int = 500_000) -> Any:
    """The rows in chunks of columns (numpy), in time order like an append-only fact table."""
    import numpy as np

    rng = np.random.default_rng(2024)
    span = (date(2026, 1, 1) - FIRST).days * 86_400
    start = np.datetime64(FIRST.isoformat() + "T00:00:00")
    for lo in range(0, rows, size):
        n = min(size, rows - lo)
        first, last = span * lo // rows, span * (lo + n) // rows
        seconds = np.sort(rng.integers(first, max(last, first + 1), n))
        amount = rng.gamma(2.0, 50.0, n).round(2)
        amount[rng.random(n) < 0.001] = np.nan
        yield {
            "id": np.arange(lo + 1, lo + n + 1),
            "ts": (start + seconds.astype("timedelta64[s]")).astype(str),
            "customer_id": rng.integers(1, 200_000, n),
            "region": np.array(["north", "south", "east", "west", "central"])[
                rng.integers(0, 5, n)
            ],
            "amount": amount,
            "status": np.array(STATUSES)[rng.choice(3, n, p=[0.9, 0.05, 0.05])],
        }


def ensure_data(db: str, rows: int, regenerate: bool) -> str:
    """Create the table unless it already holds `rows` rows; says what it did."""
    import sqlalchemy as sa

    from cycles.urls import normalise_url

    url = PG_URL if db == "postgresql" else sqlite_url(rows)
    CACHE.mkdir(parents=True, exist_ok=True)
    engine, name = sa.create_engine(normalise_url(url)), table_name(rows)
    with engine.connect() as conn:
        exists = sa.inspect(conn).has_table(name)
        count = conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar() if exists else None
    if count == rows and not regenerate:
        return f"cached ({rows:,} rows in {name})"
    clock = time.perf_counter()
    (load_postgres if db == "postgresql" else load_sqlite)(engine, name, rows)
    engine.dispose()
    return f"generated {rows:,} rows in {time.perf_counter() - clock:.1f} s"


def load_postgres(engine: Any, name: str, rows: int) -> None:
    import pandas as pd

    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(
            f"CREATE UNLOGGED TABLE {name} (id bigint NOT NULL, ts timestamp NOT NULL, "
            "customer_id integer, region text, amount double precision, status text)"
        )
        for chunk in chunks(rows):
            buffer = io.StringIO()
            pd.DataFrame(chunk).to_csv(buffer, header=False, index=False, na_rep="")
            buffer.seek(0)
            cur.copy_expert(f"COPY {name} FROM STDIN WITH (FORMAT csv)", buffer)
        cur.execute(f"ALTER TABLE {name} ADD PRIMARY KEY (id)")
        cur.execute(f"CREATE INDEX ON {name} (ts)")
        cur.execute(f"ALTER TABLE {name} SET LOGGED")
        raw.commit()
    finally:
        raw.close()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f"VACUUM ANALYZE {name}")


def load_sqlite(engine: Any, name: str, rows: int) -> None:
    raw = engine.raw_connection()
    try:
        cur = raw.cursor()
        cur.execute("PRAGMA journal_mode=OFF")
        cur.execute("PRAGMA synchronous=OFF")
        cur.execute(f"DROP TABLE IF EXISTS {name}")
        cur.execute(
            f"CREATE TABLE {name} (id INTEGER PRIMARY KEY, ts TIMESTAMP NOT NULL, "
            "customer_id INTEGER, region TEXT, amount REAL, status TEXT)"
        )
        for chunk in chunks(rows):
            stamps = [s.replace("T", " ") for s in chunk["ts"].tolist()]
            amounts = [None if a != a else a for a in chunk["amount"].tolist()]
            ids, customers = chunk["id"].tolist(), chunk["customer_id"].tolist()  # int, not numpy
            columns = [ids, stamps, customers, chunk["region"].tolist(), amounts]
            values = zip(*columns, chunk["status"].tolist(), strict=True)
            cur.executemany(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?)", values)
            raw.commit()
        cur.execute(f"CREATE INDEX {name}_ts ON {name} (ts)")
        cur.execute("ANALYZE")
        raw.commit()
    finally:
        raw.close()


def drop(db: str, rows: int) -> None:
    import sqlalchemy as sa

    from cycles.urls import normalise_url

    if db == "sqlite":
        (CACHE / f"facts-{rows}.db").unlink(missing_ok=True)
        return
    engine = sa.create_engine(normalise_url(PG_URL))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TABLE IF EXISTS {table_name(rows)}")
    engine.dispose()


# -- the three ways (each in its own subprocess) ------------------------------------------------


def window() -> Any:
    from cycles.periods import Cadence, Period, Window

    first = Period.containing(FIRST, Cadence.monthly)
    return Window(tuple(first + i for i in range(MONTHS)))


def specs() -> list[Any]:
    from cycles.checks import ExpectationSpec

    return [ExpectationSpec(type=t, kwargs=k) for t, k in CHECKS]


def summary(values: list[Any], checks: list[Any]) -> dict[str, Any]:
    """What every way must agree on: rows and means per period, unexpected counts."""
    return {
        "rows": [v.rows for v in values],
        "means": [None if v.value is None else round(v.value, 6) for v in values],
        "unexpected": [c.unexpected_count for c in checks],
    }


def radar_way(db: str, rows: int) -> tuple[Any, Any]:
    from connectors.base import Checks
    from connectors.sql import SqlConnector
    from cycles.declaration.model import MetricSpec

    url = PG_URL if db == "postgresql" else sqlite_url(rows)
    connector = SqlConnector("bench", SqlConnector.Config(url=url), base_dir=ROOT)
    metric = MetricSpec(
        connector="bench", period="ts", value="amount", query={"table": table_name(rows)}
    )
    the_window, the_specs = window(), specs()

    def run() -> dict[str, Any]:
        measured = connector.measure(metric, the_window, Checks("amount", the_specs))
        return summary(measured.values, measured.checks)

    connector.columns(connector.Query(table=table_name(rows)))  # connected before the baseline
    return run, connector.close


def hand_way(db: str, rows: int) -> tuple[Any, Any]:
    import sqlalchemy as sa

    from cycles.urls import normalise_url

    name, (cs, ce) = table_name(rows), CURRENT
    url = PG_URL if db == "postgresql" else sqlite_url(rows)
    raw = sa.create_engine(normalise_url(url)).raw_connection()
    statuses = ", ".join(f"'{s}'" for s in STATUSES)
    month = "date_trunc('month', ts)" if db == "postgresql" else "substr(ts, 1, 7)"
    mark = "%s" if db == "postgresql" else "?"
    per_month = (f"SELECT {month}, count(*), avg(amount) FROM {name} "
                 f"WHERE ts >= {mark} AND ts < {mark} GROUP BY 1 ORDER BY 1")  # fmt: skip
    current = f"FROM {name} WHERE ts >= {mark} AND ts < {mark}"
    checks = (f"SELECT count(*), count(amount), "
              f"count(*) FILTER (WHERE amount < 0 OR amount > 1000), "
              f"count(*) FILTER (WHERE status NOT IN ({statuses})), "
              f"(SELECT coalesce(sum(n), 0) FROM (SELECT count(*) AS n {current} "
              f"GROUP BY id HAVING count(*) > 1) AS d) {current}")  # fmt: skip
    bounds, now = [str(FIRST), "2026-01-01"], [str(cs), str(ce)]  # as literals: timestamps

    def run() -> dict[str, Any]:
        cur = raw.cursor()
        cur.execute(per_month, bounds)
        months = cur.fetchall()
        cur.execute(checks, now * 2)
        total, present, outside, unknown, repeated = cur.fetchone()
        return {
            "rows": [int(m[1]) for m in months],
            "means": [None if m[2] is None else round(float(m[2]), 6) for m in months],
            "unexpected": [total - present, outside, unknown, int(repeated)],
        }

    return run, raw.close


def naive_way(db: str, rows: int) -> tuple[Any, Any]:
    import pandas as pd
    import sqlalchemy as sa

    from cycles.checks import evaluate
    from cycles.declaration.model import MetricSpec
    from cycles.measure import aggregate, label_periods
    from cycles.urls import normalise_url

    url = PG_URL if db == "postgresql" else sqlite_url(rows)
    engine = sa.create_engine(normalise_url(url))
    metric = MetricSpec(connector="bench", period="ts", value="amount", query={"table": "-"})
    the_window, the_specs = window(), specs()

    def run() -> dict[str, Any]:
        with engine.connect() as conn:
            frame = pd.read_sql(f"SELECT * FROM {table_name(rows)}", conn)
        labelled = label_periods(frame, metric, the_window)
        values = aggregate(labelled, metric, the_window)
        current = labelled[labelled["__period"] == str(the_window.current)]
        checks = evaluate(
            current[["amount", "status", "id"]].reset_index(drop=True), the_specs, metric="amount"
        )
        return summary(values, checks)

    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
    return run, engine.dispose


def peak_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def child(task: str, db: str, rows: int, reps: int) -> None:
    """One measurement in this process, printed as JSON.

    "time": hand and radar alternately (order swapped every repetition, after a warm-up each);
    "memory-hand", "memory-radar": peak RSS added by a warm-up and one run;
    "naive": its times and peak RSS (the first run is timed: no warm-up, it reads everything).
    pandas and numpy are imported before the baseline in every case: they are the interpreter's.
    """
    import numpy  # noqa: F401
    import pandas  # noqa: F401

    ways = {"radar": radar_way, "hand": hand_way, "naive": naive_way}
    names = ["hand", "radar"] if task == "time" else [task.removeprefix("memory-")]
    runs = {name: ways[name](db, rows) for name in names}
    baseline, times, found = peak_kb(), {n: [] for n in names}, {}
    if task != "naive":
        found = {name: run() for name, (run, _) in runs.items()}  # warm-up
    for rep in range(reps):
        for name in names if rep % 2 == 0 else names[::-1]:
            clock = time.perf_counter()
            found[name] = runs[name][0]()
            times[name].append(time.perf_counter() - clock)
    peak = peak_kb()
    for _, close in runs.values():
        close()
    print(json.dumps({"times": times, "peak_mb": (peak - baseline) / 1024, "summary": found}))


def measure(task: str, db: str, rows: int, reps: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", task, "--databases", db, "--rows", str(rows),
               "--reps", str(reps)]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{task} on {db} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def agree(a: dict[str, Any], b: dict[str, Any]) -> bool:
    same = a["rows"] == b["rows"] and a["unexpected"] == b["unexpected"]
    close = all(
        x == y or (x is not None and y is not None and abs(x - y) < 1e-6)
        for x, y in zip(a["means"], b["means"], strict=True)
    )
    return same and close


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--naive-reps", type=int, default=1)
    parser.add_argument(
        "--databases", nargs="+", default=["postgresql", "sqlite"], choices=["postgresql", "sqlite"]
    )
    parser.add_argument("--skip-naive", action="store_true")
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--drop", action="store_true", help="remove the generated data at the end")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.databases[0], args.rows, args.reps)
        return 0
    failed = False
    for db in args.databases:
        print(f"{db}: {ensure_data(db, args.rows, args.regenerate)}", flush=True)
        timed = measure("time", db, args.rows, args.reps)
        times, summaries = timed["times"], dict(timed["summary"])
        memory = {
            way: measure(f"memory-{way}", db, args.rows, 1)["peak_mb"] for way in ("hand", "radar")
        }
        if not args.skip_naive:
            naive = measure("naive", db, args.rows, args.naive_reps)
            times["naive"], memory["naive"], summaries["naive"] = (
                naive["times"]["naive"],
                naive["peak_mb"],
                naive["summary"]["naive"],
            )
        label = {"hand": "hand-written SQL", "radar": "radar SqlConnector", "naive": "naive pandas"}
        for way, spent in times.items():
            median = statistics.median(spent)
            print(f"  {label[way]:<20} median {median:8.3f} s over {len(spent)} run(s)", end="")
            print(f"   peak RSS +{memory[way]:,.0f} MB")
        radar, hand = statistics.median(times["radar"]), statistics.median(times["hand"])
        ratio, extra = radar / hand, memory["radar"]
        checks = [
            (
                f"radar / hand-written = {ratio:.2f} (target <= {RATIO_TARGET})",
                ratio <= RATIO_TARGET,
            ),
            (
                f"radar peak RSS +{extra:.0f} MB (target < {MEMORY_TARGET_MB} MB)",
                extra < MEMORY_TARGET_MB,
            ),
            (
                "radar's figures equal the hand-written ones",
                agree(summaries["radar"], summaries["hand"]),
            ),
        ]
        if "naive" in times:
            slower = statistics.median(times["naive"]) / radar
            print(f"  naive / radar = {slower:.1f}x the time; peak RSS +{memory['naive']:,.0f} MB")
            same = agree(summaries["radar"], summaries["naive"])
            checks.append(("naive pandas' figures equal radar's", same))
        for text, ok in checks:
            failed |= not ok
            print(f"  {'PASS' if ok else 'FAIL'} {text}", flush=True)
        if args.drop:
            drop(db, args.rows)
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
