"""Declarations that must be refused at load time, and text that must not hijack output
(issue 12, items 7, 14, 15, 17)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from conftest import months, radar, write_declaration, write_monthly_csv


@pytest.fixture
def project(workdir: Path) -> Path:
    values = {m: 0.2 + 0.002 * ((i * 7) % 5 - 2) for i, m in enumerate(months("2024-01", 24))}
    write_monthly_csv(workdir / "data" / "rate.csv", values)
    return write_declaration(workdir)


HOSTILE = {
    "a local tag": ("title: Customers refer us\n", "title: !x [a]\n", "YAML tag !x is not allowed"),
    "a python object": (
        "title: Customers refer us\n",
        "title: !!python/object/apply:os.system [id]\n",
        "YAML tag tag:yaml.org,2002:python/object/apply:os.system is not allowed",
    ),
    "binary": ("title: Customers refer us\n", "title: !!binary aGVsbG8=\n", "binary values"),
    "a lone surrogate": ("title: Customers refer us\n", 'title: "a\\udc80b"\n', "lone surrogate"),
    "a NUL": ("title: Customers refer us\n", 'title: "a\\0b"\n', "NUL character"),
    "a NUL in a key": ("title: Customers refer us\n", 'title: {"k\\0": 1}\n', "NUL character"),
    "a long approach name": ("  - name: incentive\n", f"  - name: {'a' * 201}\n", "at most 200 characters"),
}  # fmt: skip


@pytest.mark.parametrize(("old", "new", "said"), HOSTILE.values(), ids=HOSTILE.keys())
def test_validate_refuses_what_run_could_not_store(
    project: Path, workdir: Path, old: str, new: str, said: str
) -> None:
    text = project.read_text()
    assert old in text
    project.write_text(text.replace(old, new, 1))
    for command in (["validate", str(project)], ["run", str(project), "--period", "2025-09"]):
        ran = radar(*command, cwd=workdir)
        assert ran.returncode == 2, ran.stderr
        assert ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr
        assert f"{project}:" in ran.stderr and said in ran.stderr
    assert not (workdir / ".radar").exists()


def test_a_python_declaration_with_a_nul_is_refused(workdir: Path) -> None:
    path = workdir / "nul.py"
    path.write_text(
        "from cycles.declaration import Outcome\n"
        "outcome = Outcome(outcome='nul', title='a\\x00b', cadence='monthly',\n"
        "    result={'metric': 'rate', 'target': 0.3},\n"
        "    metrics={'rate': {'connector': 'crm', 'period': 'day', 'value': 'rate'}},\n"
        "    connectors={'crm': {'type': 'csv', 'path': 'rate.csv'}},\n"
        "    approaches=[{'name': 'a'}])\n"
    )
    ran = radar("validate", str(path), cwd=workdir)
    assert ran.returncode == 2 and "NUL character" in ran.stderr, ran.stderr


def test_a_huge_declaration_is_refused_before_it_is_read(workdir: Path) -> None:
    path = workdir / "huge.yaml"
    path.write_text("outcome: huge\n" + "# padding\n" * 200_000)
    ran = radar("validate", str(path), cwd=workdir)
    assert ran.returncode == 2 and ran.stderr.count("\n") == 1
    assert "a declaration is at most 1,000,000 bytes" in ran.stderr


STORES = {
    "sqlite": None,
    "postgresql": "RADAR_TEST_POSTGRES_URL",
    "mysql": "RADAR_TEST_MYSQL_URL",
}


@pytest.mark.parametrize("store", STORES)
def test_the_longest_name_a_declaration_allows_is_kept_by_every_store(
    project: Path, workdir: Path, store: str
) -> None:
    import uuid

    variable = STORES[store]
    if variable and not os.environ.get(variable):
        pytest.skip(f"{variable} not set: the {store} store is not checked")
    url = os.environ[variable] if variable else f"sqlite:///{workdir / 'h.db'}"
    outcome = f"long-{uuid.uuid4().hex[:8]}"  # unique per run on shared servers
    name = "n" * 200
    text = project.read_text().replace("outcome: refer", f"outcome: {outcome}")
    project.write_text(text.replace("  - name: incentive\n", f"  - name: {name}\n"))
    env = {"RADAR_DATABASE_URL": url}
    ran = radar("run", str(project), "--period", "2025-09", "--json", cwd=workdir, env=env)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["approach"]["name"] == name
    from cycles.store import Store

    kept = Store(url)
    try:
        assert [c.approach.name for c in kept.cycles(outcome) if c.approach] == [name]
    finally:
        kept.delete_outcome(outcome)
        kept.dispose()


def test_a_name_lookup_imports_no_unrelated_file(project: Path, workdir: Path) -> None:
    flows = workdir / "flows"
    flows.mkdir()
    marker = workdir / "imported"
    (flows / "other.py").write_text(
        f"# mentions refer, but declares nothing of it\nopen({str(marker)!r}, 'w').close()\n"
        "from cycles.declaration import Outcome  # Outcome( is mentioned\n"
    )
    data = str(workdir / "data" / "rate.csv")
    (flows / "refer.yaml").write_text(project.read_text().replace("data/rate.csv", data))
    project.unlink()
    ran = radar("run", "refer", "--period", "2025-09", "--dry-run", cwd=workdir)
    assert ran.returncode == 0, ran.stderr
    assert not marker.exists(), "looking up 'refer' imported flows/other.py"


@pytest.mark.parametrize(
    ("title", "approach"),
    [("Sales [/bold] up", "[/] a"), ("Sales \x1b[2J\x1b]0;pwned\x07 up", "b\x1b[31m")],
    ids=["rich markup", "terminal control sequences"],
)
def test_markup_and_control_sequences_in_names_are_shown_as_text(
    project: Path, workdir: Path, title: str, approach: str
) -> None:
    text = project.read_text().replace("title: Customers refer us", f"title: {json.dumps(title)}")
    project.write_text(text.replace("  - name: incentive\n", f"  - name: {json.dumps(approach)}\n"))
    for command in (
        ["run", str(project), "--period", "2025-09"],
        ["run", str(project), "--period", "2025-10"],
        ["history", "refer"],
        ["run", str(project), "--from", "2025-11", "--to", "2025-12"],
    ):
        ran = radar(*command, cwd=workdir)
        assert ran.returncode == 0, ran.stderr
        assert "\x1b" not in ran.stdout and "\x1b" not in ran.stderr
    shown = radar("history", "refer", cwd=workdir).stdout
    # markup is shown as written; a control sequence is dropped whole
    assert ("[/] a (usd=20)" in shown) if approach == "[/] a" else ("b (usd=20)" in shown), shown
