"""The README's examples are code that runs: its Python blocks execute, its declaration and the
fragments of one validate as declarations (the model only: the data files they name are not
here), the defaults it shows are the model's, and its two commands are what CI runs."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from cycles.declaration import Outcome, PolicySpec, load_yaml

from conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"^```(\w*)\n(.*?)^```", README, re.S | re.M)


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def declaration_example() -> str:
    """The annotated declaration under "Declaring an outcome"."""
    [example] = [b for b in blocks("yaml") if b.startswith("outcome: ")]
    return example


def yaml_data(text: str) -> Any:
    return YAML(typ="safe").load(text)


def merged(base: Any, part: Any) -> Any:
    """`part` laid over `base`: mappings merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(part, dict):
        return {**base, **{k: merged(base.get(k), v) for k, v in part.items()}}
    return part


def test_the_python_examples_run() -> None:
    examples = blocks("python")
    assert examples, "the README shows no Python example"
    for example in examples:
        namespace: dict[str, Any] = {}
        exec(compile(example, "README.md", "exec"), namespace)  # our own README
    outcome = namespace["outcome"]  # the "Python form" of the declaration example
    assert isinstance(outcome, Outcome) and outcome.outcome == "referrals"
    assert outcome.result.metric == "referral_rate" and outcome.result.target == 0.30


def test_the_declaration_example_validates(tmp_path: Path) -> None:
    path = tmp_path / "referrals.yaml"
    path.write_text(declaration_example(), encoding="utf-8")
    outcome = load_yaml(path)
    assert outcome.outcome == "referrals" and outcome.parent == "company-growth"
    assert [a.name for a in outcome.approaches] == ["referral-incentive"]
    assert outcome.review is not None and outcome.review.after_event == "campaign.ended"
    # "policy: all optional, defaults shown": they are the defaults
    assert outcome.policy == PolicySpec()


@pytest.mark.parametrize(
    "first_line", ["connectors:", "result:", "policy:\n  signals:", "policy:\n  baseline_periods:"]
)
def test_each_declaration_fragment_validates_in_the_example(
    first_line: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sources, Drivers, Signals, Seasonal baselines: each laid over the declaration example."""
    [fragment] = [b for b in blocks("yaml") if b.startswith(first_line)]
    monkeypatch.setenv("WAREHOUSE_URL", "sqlite:///warehouse.db")
    monkeypatch.setenv("CRM_TOKEN", "token")
    data = merged(yaml_data(declaration_example()), yaml_data(fragment))
    drivers = list(data["result"].get("drivers") or [])
    while drivers:  # the drivers' own metrics, which the fragment leaves out
        driver = drivers.pop()
        data["metrics"].setdefault(
            driver["metric"],
            {"connector": "crm_export", "period": "week", "value": driver["metric"]},
        )
        drivers += driver.get("drivers") or []
    path = tmp_path / "referrals.yaml"
    with path.open("w", encoding="utf-8") as out:
        YAML(typ="safe").dump(data, out)
    outcome = load_yaml(path)
    if first_line == "policy:\n  signals:":  # "all optional, defaults shown"
        assert outcome.policy.signals == PolicySpec().signals


def test_the_plugin_entry_point_example_is_the_example_plugins() -> None:
    [example] = blocks("toml")
    shown = tomllib.loads(example)["project"]["entry-points"]["radar.connectors"]
    plugin = tomllib.loads(
        (ROOT / "tests" / "plugins" / "radar-echo" / "pyproject.toml").read_text()
    )
    assert shown.items() <= plugin["project"]["entry-points"]["radar.connectors"].items()


def test_ci_runs_the_readme_test_command() -> None:
    """.ci/run ends with the README's second command, which installs the pinned versions."""
    first, second = [b.strip() for b in blocks("sh")[:2]]
    assert first.endswith("&& .venv/bin/radar demo") and second.endswith("&& .venv/bin/pytest")
    for command in (first, second):
        assert " -c constraints.txt " in command
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().splitlines()[-1] == second
