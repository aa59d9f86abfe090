"""`radar replay OUTCOME [--policy FILE] [--from P] [--json]` on the bundled demo's history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cycles.cli import main


@pytest.fixture
def demo(workdir: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["demo", "--no-prefect"]) == 0
    capsys.readouterr()
    return workdir


def test_replay_under_the_declared_policy(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "referrals"]) == 0
    out = capsys.readouterr().out
    assert "replay of referrals under the declared policy" in out
    assert out.count(" same\n") == 14
    assert "0 of 14 reviewed periods differ" in out
    assert "referral-incentive 5 → 5 periods; promoter-nudge 9 → 9 periods" in out
    assert main(["replay", "referrals", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 14 and not any(r["differs"] for r in rows)
    assert all({"period", "recorded", "replayed", "reasons"} <= set(r) for r in rows)
    assert [r["recorded"] for r in rows] == [r["replayed"] for r in rows]


def test_replay_under_another_policy(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (demo / "what-if.yaml").write_text("policy:\n  max_adjustments: 2\n")
    assert main(["replay", "referrals", "--policy", "what-if.yaml", "--json"]) == 0
    rows = {r["period"]: r for r in json.loads(capsys.readouterr().out)}
    assert (rows["2025-12"]["recorded"], rows["2025-12"]["replayed"]) == ("adjust", "switch")
    assert rows["2026-01"]["approach"]["replayed"]["name"] == "promoter-nudge"
    assert main(["replay", "referrals", "--policy", "what-if.yaml", "--from", "2026-03"]) == 0
    out = capsys.readouterr().out
    assert "0 of 8 reviewed periods differ" in out and "2025-12" not in out


def test_replay_mistakes(demo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (demo / "bad.yaml").write_text("policy:\n  sustain: 3\n  choise: order\n")
    assert main(["replay", "referrals", "--policy", "bad.yaml"]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:3" in err and "policy.choise" in err and err.count("\n") == 1
    assert main(["replay", "referrals", "--from", "2026-13"]) == 2
    assert "radar: --from: '2026-13': month must be 01-12" in capsys.readouterr().err
    assert main(["replay", "nope"]) == 2


def test_replay_without_history(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "referrals"]) == 1
    assert "no cycles recorded for 'referrals' yet" in capsys.readouterr().err
    assert not (workdir / ".radar").exists()  # nothing was created
