"""Deployment specs from declarations, and the repository's prefect.yaml kept in step."""

from __future__ import annotations

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


def test_no_trigger_without_a_review_block() -> None:
    assert "triggers" not in deployment_spec(OUTCOME.model_copy(update={"review": None}))


def test_prefect_yaml_is_generated_from_flows() -> None:
    outcomes = [load(p) for p in declaration_files(ROOT / "flows")]
    committed = (ROOT / "prefect.yaml").read_text()
    assert committed == prefect_yaml(outcomes), (
        "run: radar deploy --write-prefect-yaml prefect.yaml"
    )


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
    assert rows[-1]["period"] == "2025-11" and rows[-1]["upper"] == record.limits.upper  # type: ignore[union-attr]
    assert len(rows) <= 12
