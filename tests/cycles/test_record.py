"""CycleRecord.extra typed: older rows load unchanged, round-trip, and a typo is never read."""

from __future__ import annotations

import copy
import json
import pickle
import re
from pathlib import Path
from typing import Any

import pytest
import test_store
from sqlalchemy import select, update

from cycles.record import ChildStanding, CycleRecord, RecordExtra, Score, SignOffRequest, Void
from cycles.store import Store
from cycles.store.fastread import read_cycles
from cycles.store.models import CycleRow
from cycles.values import Answer, DecisionKind, DriverState, Effect, SignOff, Stage

db_url = test_store.db_url  # an empty SQLite, PostgreSQL and MySQL/MariaDB database

ROOT = Path(__file__).resolve().parents[2]

# A reviewed cycle's `extra` as the engine wrote it before it was typed (a real row of the
# bundled example), with keys this version does not know, at the top and inside a value.
OLD: dict[str, Any] = {
    "campaign": "spring",
    "stage_seconds": {"result": 0.0081, "approach": 0.0, "assessment": 0.0108, "review": 0.0124},
    "approach_reason": "planned by the 2025-11 review (hold)",
    "baseline_count": 11,
    "approach_start": "2025-08",
    "drivers": [
        {"metric": "asks_sent", "parent": None, "depth": 1, "target": 400.0,
         "direction": "increase", "deployment": True, "value": 428.55,
         "share_of_target": 1.071375, "met": True, "moved": "flat",
         "moved_vs": "baseline limits",
         "limits": {"centre": 429.1034, "lower": 414.5166, "upper": 443.6901}},
        {"metric": "promoter_share", "parent": None, "depth": 1, "target": 0.4,
         "direction": "increase", "deployment": False, "value": None,
         "share_of_target": None, "met": None, "moved": None, "moved_vs": None, "limits": None},
    ],
    "sign_off": {"answer": "approve", "approach": None, "note": "ok", "by": "operator"},
    "children": [
        {"outcome": "leads", "period": "2025-12", "decision": "keep", "value": 0.61,
         "target": 0.5, "direction": "increase"},
        {"outcome": "support", "period": None, "decision": None, "value": None, "target": None,
         "direction": None},
    ],
    "summary": "3 adjustments without a keep; promoter-nudge on evidence",
    "effect": None,  # written as null when there is none
    "score": {"results": 55, "approach": 100, "deployment": 100, "assessment": 100,
              "total": 80, "band": "clear evidence", "attributes": {"trend": 25, "implemented": 100},
              "evidence": {"trend": "flat"}, "version": 1},
    "owner": "growth",  # unknown to this version
    "legacy": {"deep": [1, None, "x"]},
}  # fmt: skip


def _record(**kw: Any) -> CycleRecord:
    return CycleRecord(outcome="refer", period="2025-12", cadence="monthly", target=0.3, **kw)


# -- old rows -------------------------------------------------------------------------------------


def test_an_old_extra_reads_typed() -> None:
    extra = _record(extra=copy.deepcopy(OLD)).extra
    assert extra.campaign == "spring" and extra.baseline_count == 11
    assert extra.stage_seconds["assessment"] == 0.0108
    [asks, promoters] = extra.drivers
    assert isinstance(asks, DriverState) and asks.moved == "flat" and asks.limits is not None
    assert asks.limits.upper == 443.6901 and promoters.value is None
    assert extra.sign_off == SignOff(answer=Answer.approve, note="ok")
    assert [c.decision for c in extra.children] == [DecisionKind.keep, None]
    assert extra.effect is None and extra.proposal is None and extra.void is None
    assert isinstance(extra.score, Score) and extra.score.total == 80
    assert extra.score.attributes["implemented"] == 100
    assert extra.model_extra == {"owner": "growth", "legacy": {"deep": [1, None, "x"]}}


def test_an_old_extra_is_written_back_as_it_was() -> None:
    record = _record(extra=copy.deepcopy(OLD))
    dumped = record.to_json_dict()
    assert dumped["extra"] == OLD  # unknown keys kept, nothing added, null kept
    assert list(dumped["extra"]) == list(OLD)  # in the order it was stored (JSON keeps it)
    assert dumped["score"] == OLD["score"] and dumped["children"] == OLD["children"]
    assert dumped["effect"] is None


def test_only_the_keys_a_record_was_given_are_written() -> None:
    assert _record().to_json_dict()["extra"] == {}
    partial = {"score": {"attributes": {"implemented": 100}}}  # an older, partial score
    assert _record(extra=partial).to_json_dict()["extra"] == partial
    record = _record()
    record.extra.summary = "held"
    record.extra.effect = None  # set to None: written as null
    record.extra.children = [ChildStanding(outcome="leads")]
    assert record.to_json_dict()["extra"] == {
        "children": [{"outcome": "leads"}],
        "summary": "held",
        "effect": None,
    }
    record.extra.discard("summary")  # as the old dict's pop
    assert "summary" not in record.to_json_dict()["extra"] and record.extra.summary is None


def test_a_stored_value_is_read_when_first_asked_for() -> None:
    extra = RecordExtra.stored(copy.deepcopy(OLD))
    assert extra == RecordExtra.stored(OLD)  # equal whichever values were read
    assert extra.drivers[0].metric == "asks_sent" and extra.summary == OLD["summary"]
    assert extra == RecordExtra.stored(OLD) and extra.model_dump(mode="json") == OLD
    for copied in (copy.deepcopy(extra), pickle.loads(pickle.dumps(extra)), extra.model_copy()):
        assert copied.model_dump(mode="json") == OLD and copied.children == extra.children


def test_a_row_keeps_its_key_order_and_a_new_key_comes_last() -> None:
    record = _record(extra={"summary": "a", "campaign": "c", "owner": "x"})
    record.extra.score = Score(total=5)
    record.extra.summary = "b"  # replaced where it was, as in the untyped dict
    extra = record.to_json_dict()["extra"]
    assert list(extra) == ["summary", "campaign", "owner", "score"] and extra["summary"] == "b"


def test_a_value_this_version_cannot_read_is_kept_and_reads_as_unset() -> None:
    stored = {
        "drivers": "x",
        "score": {"total": "high"},
        "sign_off": {"answer": "***"},  # a secret that was "approve" redacted
        "children": [{"period": "2025-12"}],  # no outcome
        "summary": "kept",
    }
    record = _record(extra=copy.deepcopy(stored))
    extra = record.extra
    assert extra.drivers == [] and extra.score is None and extra.sign_off is None
    assert extra.children == [] and extra.summary == "kept"
    assert record.to_json_dict()["extra"] == stored  # written back as it was
    assert record.to_json_dict()["score"] == {"total": "high"}  # as the JSON always had it
    extra.score = Score(total=60)  # written anew: the value read replaces the stored one
    assert record.to_json_dict()["extra"]["score"] == {"total": 60}


def test_a_writer_s_mistake_is_refused() -> None:
    extra = RecordExtra()
    with pytest.raises(ValueError, match="drivers"):
        extra.drivers = "x"
    with pytest.raises(ValueError, match="score"):
        _record(extra={"score": {"total": "high"}}).extra.score = {"total": "high"}


# -- a typo is never silently read (nor written) ----------------------------------------------


def test_a_typo_d_field_is_an_error() -> None:
    record = _record(extra=copy.deepcopy(OLD))
    with pytest.raises(AttributeError):
        record.extra.scroe  # noqa: B018
    with pytest.raises(AttributeError):
        record.extra.summery = "x"
    with pytest.raises(AttributeError):
        assert record.extra.score is not None
        record.extra.score.totl  # noqa: B018
    with pytest.raises(KeyError):
        record.extra.discard("scroe")


def test_a_sign_off_request_is_typed_and_stored_as_json() -> None:
    record = _record()
    assert record.extra.sign_off_requested is None
    asked = {"at": "2026-01-01T00:00:00+00:00", "deadline": "2026-01-08T00:00:00+00:00",
             "decision": "adjust", "flow_run": "f00"}  # fmt: skip
    record.extra.sign_off_requested = SignOffRequest(**asked)
    assert record.extra.sign_off_requested.deadline == asked["deadline"]
    assert record.to_json_dict()["extra"] == {"sign_off_requested": asked}


def test_no_untyped_extra_readers() -> None:
    """Every reader and writer uses the attributes."""
    pattern = re.compile(r"\.extra(\[|\.get\(|\.setdefault\(|\.pop\()")
    found = [
        f"{path.relative_to(ROOT)}:{n}"
        for folder in ("cycles", "connectors")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert found == []


# -- through the history ----------------------------------------------------------------------


def test_an_old_row_loads_unchanged_and_round_trips(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.save_stage(_record(status="reviewed", completed_stages=list(Stage)), None)
        table = CycleRow.__table__
        with store._engine.begin() as conn:  # the row as the untyped dict was stored
            conn.execute(update(table).values(extra=OLD))
        light, full = store.cycles("refer", light=True)[0], store.get_cycle("refer", "2025-12")
        fast = read_cycles(db_url, "refer")
        assert full is not None and fast is not None
        for record in (light, full, fast[0]):
            assert record.extra.score is not None and record.extra.score.total == 80
            assert record.to_json_dict()["extra"] == OLD
        store.save_stage(light, None)  # saved again by this version
        with store._engine.connect() as conn:
            [stored] = conn.execute(select(table.c.extra)).scalars()
        assert (json.loads(stored) if isinstance(stored, str) else stored) == OLD
    finally:
        store.dispose()


def test_the_store_writes_typed_values_into_the_old_shape(db_url: str) -> None:
    store = Store(db_url)
    try:
        store.save_stage(_record(extra={"summary": "kept"}), None)
        store.mark_pending("refer", "2025-12", "review of 2025-12 pending: campaign.ended")
        pending = store.get_cycle("refer", "2025-12")
        assert pending is not None
        assert pending.extra.pending == "review of 2025-12 pending: campaign.ended"
        void = store.void_cycle("refer", "2025-12", "a test file")
        assert isinstance(void.extra.void, Void) and void.extra.void.reason == "a test file"
        assert void.extra.void.status == "review pending" and void.extra.summary == "kept"
        assert set(void.to_json_dict()["extra"]["void"]) == {"reason", "at", "status"}
    finally:
        store.dispose()


def test_an_effect_reads_back_as_the_engine_wrote_it() -> None:
    effect = Effect(estimate=0.1, lower=0.05, upper=0.15, periods=3, approach="nudge")
    record = _record()
    record.extra.effect = effect
    again = CycleRecord.model_validate(record.model_dump(mode="json"))
    assert again.extra.effect == effect
