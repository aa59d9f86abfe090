"""Shards of a tick (`radar deploy --shards N`), their deployments, and per-connector limits.

No Prefect server here: the specs are plain data, the limit is a hook of the engine.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest

from cycles.declaration import load
from cycles.deploy import deployment_spec, prefect_yaml, tick_spec
from cycles.engine import captured_output, run_cycle
from cycles.errors import DeclarationError
from cycles.limits import declared_limits, limit_name
from cycles.shards import TICK_ENTRYPOINT, Group, group_of, shard_of, shards

from conftest import months, write_declaration, write_monthly_csv


def outcome_in(directory: Path, name: str, extra: str = "") -> object:
    directory.mkdir(parents=True, exist_ok=True)
    return load(write_declaration(directory, outcome=name, extra=extra))


def test_an_outcome_always_lands_in_the_same_shard() -> None:
    # blake2b of the identifier: the same in every process and on every machine
    assert [shard_of(f"o{i}", 2) for i in range(8)] == [shard_of(f"o{i}", 2) for i in range(8)]
    assert shard_of("referrals", 1) == 1
    assert {shard_of(f"o{i}", 4) for i in range(200)} == {1, 2, 3, 4}
    spread = Counter(shard_of(f"bench-{i:04d}", 2) for i in range(1000))
    assert 450 <= spread[1] <= 550, spread  # an even split
    with pytest.raises(ValueError):
        shard_of("x", 0)


def test_adding_an_outcome_never_moves_another(tmp_path: Path) -> None:
    few = [outcome_in(tmp_path / f"o{i}", f"o{i}") for i in range(12)]
    more = [*few, *(outcome_in(tmp_path / f"n{i}", f"n{i}") for i in range(5))]

    def owners(outcomes: list) -> dict[str, str]:
        return {o.outcome: s.name for s in shards(outcomes, 3) for o in s.outcomes}

    before, after = owners(few), owners(more)
    assert {k: after[k] for k in before} == before
    assert sorted(after) == sorted(o.outcome for o in more)  # each in exactly one shard


def test_shards_group_outcomes_that_tick_together(tmp_path: Path) -> None:
    plain = outcome_in(tmp_path / "a", "a")
    amsterdam = outcome_in(tmp_path / "b", "b", "timezone: Europe/Amsterdam\n")
    custom = outcome_in(tmp_path / "c", "c", "schedule: {cron: '0 7 2 * *'}\n")
    paused = outcome_in(tmp_path / "d", "d", "schedule: {active: false}\n")
    found = shards([plain, amsterdam, custom, paused], 2)
    names = [s.name for s in found]
    assert "monthly-1of2" in names and "monthly-2of2" in names
    assert {"monthly-europe-amsterdam-1of2", "monthly-europe-amsterdam-2of2"} <= set(names)
    assert len(names) == 6  # three groups, two shards each (empty ones too: stable names)
    assert group_of(custom).label.startswith("monthly-utc-cron-")
    ticked = [o.outcome for s in found for o in s.outcomes]
    assert sorted(ticked) == ["a", "b", "c"]  # an inactive schedule ticks in no shard
    assert Group("weekly", "0 6 * * 1", "UTC").label == "weekly"


def test_the_tick_deployment_names_its_outcomes_and_schedule(tmp_path: Path) -> None:
    outcomes = [outcome_in(tmp_path / "flows" / f"o{i}", f"o{i}") for i in range(6)]
    [first, second] = shards(outcomes, 2)
    spec = tick_spec(first, pool="ops", workdir=tmp_path, concurrency=3)
    assert spec["name"] == "monthly-1of2"
    assert spec["entrypoint"] == TICK_ENTRYPOINT
    assert spec["schedules"] == [{"cron": "0 6 1 * *", "timezone": "UTC", "active": True}]
    params = spec["parameters"]
    assert params["shard"] == "monthly-1of2" and params["concurrency"] == 3
    assert params["outcomes"] == {o.outcome: f"flows/{o.outcome}/{o.outcome}.yaml"
                                  for o in first.outcomes}  # fmt: skip
    assert set(params["outcomes"]).isdisjoint(tick_spec(second)["parameters"]["outcomes"])
    env = spec["work_pool"]["job_variables"]["env"]
    assert env["PREFECT_FLOWS_HEARTBEAT_FREQUENCY"] == "60"  # a dead tick is noticed


def test_with_shards_an_outcomes_own_deployment_keeps_no_schedule(tmp_path: Path) -> None:
    outcome = outcome_in(tmp_path, "refer")
    assert deployment_spec(outcome, scheduled=False)["schedules"] == []
    assert deployment_spec(outcome)["schedules"][0]["cron"] == "0 6 1 * *"
    image = {"image": "radar:1", "env": {"EXTRA": "1"}}
    spec = deployment_spec(outcome, workdir=tmp_path, job_variables=image)
    job = spec["work_pool"]["job_variables"]
    assert job["image"] == "radar:1"
    assert job["env"]["EXTRA"] == "1" and job["env"]["RADAR_DECLARATION"] == "refer.yaml"
    text = prefect_yaml([outcome], workdir=tmp_path, shards=2)
    assert "name: monthly-1of2" in text and TICK_ENTRYPOINT in text


def test_a_connector_declares_its_concurrency(tmp_path: Path) -> None:
    limited = "connectors:\n  crm: {type: csv, path: data/rate.csv, concurrency: 3}\n"
    text = write_declaration(tmp_path).read_text()
    text = text.replace("connectors:\n  crm:\n    type: csv\n    path: data/rate.csv\n", limited)
    (tmp_path / "a.yaml").write_text(text.replace("outcome: refer", "outcome: a"))
    (tmp_path / "b.yaml").write_text(
        text.replace("outcome: refer", "outcome: b").replace("concurrency: 3", "concurrency: 2")
    )
    a, b = load(tmp_path / "a.yaml"), load(tmp_path / "b.yaml")
    assert a.connectors["crm"].concurrency == 3
    # the strictest declaration of a connector name wins: one source, one limit
    assert declared_limits([a, b]) == {"radar-connector-crm": 2}
    assert limit_name("crm") == "radar-connector-crm"
    (tmp_path / "c.yaml").write_text(text.replace("concurrency: 3", "concurrency: 0"))
    with pytest.raises(DeclarationError, match=r"concurrency"):
        load(tmp_path / "c.yaml")


def test_the_engine_holds_the_limit_around_every_query(workdir: Path) -> None:
    values = dict.fromkeys(months("2024-09", 14), 0.2)
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    outcome = load(write_declaration(workdir))
    held: list[str] = []

    @contextmanager
    def limit(connector: str):  # type: ignore[no-untyped-def]
        held.append(connector)
        yield

    record = run_cycle(outcome, "2025-09", store=None, limit=limit)
    assert record.decision is not None
    assert held == ["crm"]  # one query of the one connector, inside the limit


def test_what_actions_print_is_captured_per_thread(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import sys

    caplog.set_level(logging.INFO, logger="radar.actions")
    before = sys.stdout
    barrier = threading.Barrier(2)

    def act(key: str) -> None:
        with captured_output(key):
            barrier.wait()
            for i in range(20):
                print(f"{key} line {i}")
                time.sleep(0.001)

    threads = [threading.Thread(target=act, args=(k,)) for k in ("a/1", "b/1")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sys.stdout is before  # restored once both are done
    lines = [r.getMessage() for r in caplog.records if r.name == "radar.actions"]
    for key in ("a/1", "b/1"):
        mine = [line for line in lines if line.startswith(f"{key}: ")]
        assert len(mine) == 20 and all(line.endswith(f"{key} line {i}") for i, line in
                                       enumerate(mine)), lines  # fmt: skip
