"""Deployment specs from declarations, and the repository's prefect.yaml kept in step."""

from __future__ import annotations

from pathlib import Path

import pytest

from cycles.artifacts import artifact_key, recent_table, review_markdown
from cycles.declaration import load
from cycles.declaration.loader import declaration_files
from cycles.deploy import deployment_spec, prefect_yaml
from cycles.engine import run_cycle

from conftest import ROOT

OUTCOME = load(ROOT / "flows" / "referrals" / "referrals.yaml")


def test_deployment_spec() -> None:
    spec = deployment_spec(OUTCOME, pool="ops")
    assert spec["entrypoint"] == "cycles.deployed.referrals"
    assert spec["tags"] == ["outcome:referrals", "cadence:monthly"]
    assert spec["work_pool"] == {"name": "ops"}
    assert spec["schedules"] == [
        {"cron": "0 6 1 * *", "timezone": "Europe/Amsterdam", "active": True}
    ]
    [trigger] = spec["triggers"]
    assert trigger["expect"] == ["campaign.ended"] and trigger["schedule_after"] == "P14D"
    assert trigger["match"] == {"prefect.resource.id": "radar.outcome.referrals"}
    assert trigger["parameters"]["review"] is True
    # a single template expression keeps the payload's JSON type; default(none) tolerates no period
    assert trigger["parameters"]["period"] == "{{ event.payload.period | default(none) }}"
    # without a period, the review is for the period holding the event (not the delayed run)
    assert trigger["parameters"]["event_time"] == "{{ event.occurred.isoformat() }}"


def test_no_trigger_without_an_event_to_wait_for() -> None:
    from datetime import timedelta

    from cycles.declaration.model import ReviewSpec

    delay_only = OUTCOME.model_copy(update={"review": ReviewSpec(delay=timedelta(days=3))})
    assert "triggers" not in deployment_spec(delay_only)


def test_no_trigger_without_a_review_block() -> None:
    assert "triggers" not in deployment_spec(OUTCOME.model_copy(update={"review": None}))


def test_prefect_yaml_is_generated_from_flows() -> None:
    outcomes = [load(p) for p in declaration_files(ROOT / "flows")]
    committed = (ROOT / "prefect.yaml").read_text()

    def without_version(text: str) -> str:  # any Prefect release writes its own version
        return "\n".join(
            line for line in text.splitlines() if not line.startswith("prefect-version:")
        )

    assert without_version(committed) == without_version(prefect_yaml(outcomes, workdir=ROOT)), (
        "run: radar deploy --write-prefect-yaml prefect.yaml"
    )


def test_deployment_finds_its_declaration_where_the_runs_work(tmp_path: Path) -> None:
    import shutil

    outside = tmp_path / "elsewhere" / "referrals"
    shutil.copytree(ROOT / "flows" / "referrals", outside)
    outcome = load(outside / "referrals.yaml")
    inside = deployment_spec(outcome, workdir=tmp_path)["work_pool"]["job_variables"]["env"]
    assert inside["RADAR_DECLARATION"] == "elsewhere/referrals/referrals.yaml"  # relative: portable
    away = deployment_spec(outcome, workdir=ROOT)["work_pool"]["job_variables"]["env"]
    assert away["RADAR_DECLARATION"] == str(outside.resolve() / "referrals.yaml")


def test_a_title_read_from_the_environment_is_deployed_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    target = tmp_path / "referrals"
    shutil.copytree(ROOT / "flows" / "referrals", target)
    path = target / "referrals.yaml"
    path.write_text(path.read_text().replace("title: Every customer willingly refers us",
                                             "title: Refer us in ${REGION_SECRET}"))  # fmt: skip
    monkeypatch.setenv("REGION_SECRET", "north-zone-7")
    spec = deployment_spec(load(path), workdir=tmp_path)
    assert spec["description"] == "Refer us in ${REGION_SECRET}"
    monkeypatch.delenv("REGION_SECRET")
    assert "north-zone-7" not in prefect_yaml([load(path, env="keep")], workdir=tmp_path)


def test_deployed_entry_point_builds_the_flow() -> None:
    import cycles.deployed

    flow = cycles.deployed.referrals
    assert flow.name == "referrals"
    import pytest

    with pytest.raises(AttributeError, match="no declared outcome 'nope'"):
        cycles.deployed.nope  # noqa: B018


def test_artifacts_content() -> None:
    assert artifact_key("my_outcome", "review") == "my-outcome-review"
    record = run_cycle(OUTCOME, "2025-11", store=None)  # dry: the broken export month
    text = review_markdown(record)
    assert "# referrals · 2025-11" in text and "**hold**" in text
    assert "## Failed checks" in text and "expect_column_values_to_not_be_null" in text
    rows = recent_table(record)
    assert record.limits is not None and rows[-1]["period"] == "2025-11"
    assert rows[-1]["upper"] == pytest.approx(record.limits.upper, rel=1e-3)  # rounded to read
    assert len(rows) <= 12
