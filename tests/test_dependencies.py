"""Dependencies bounded to what is tested: every package the code imports is declared (the
tests' own in the `test` extra), each with a floor and a ceiling, and constraints.txt, which CI
installs from, pins each within those bounds."""

from __future__ import annotations

import ast
import sys
import tomllib
from functools import cache
from importlib.metadata import packages_distributions

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from conftest import ROOT

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
RUNTIME = [Requirement(r) for r in PROJECT["dependencies"]]
TEST = [Requirement(r) for r in PROJECT["optional-dependencies"]["test"]]


def names(requirements: list[Requirement]) -> set[str]:
    return {canonicalize_name(r.name) for r in requirements}


@cache
def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pairs = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): version.strip() for name, version in pairs}


def imported(directories: list[str]) -> dict[str, set[str]]:
    """Top-level modules imported (absolutely) anywhere under `directories`, and by which files;
    the standard library and the repository's own modules left out."""
    files = [p for d in directories for p in (ROOT / d).rglob("*.py")]
    own = {"cycles", "connectors", "radar_echo"} | {p.stem for p in (ROOT / "tests").rglob("*.py")}
    own |= {p.stem for p in (ROOT / "bench").glob("*.py")}
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top not in sys.stdlib_module_names and top not in own and top != "__future__":
                    found.setdefault(top, set()).add(str(path.relative_to(ROOT)))
    return found


def undeclared(modules: dict[str, set[str]], declared: set[str]) -> list[str]:
    providers = packages_distributions()
    missing = []
    for module, where in sorted(modules.items()):
        dists = {canonicalize_name(d) for d in providers.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} ({', '.join(sorted(dists))}) in {sorted(where)[0]}")
    return missing


def test_every_import_of_the_package_is_a_declared_dependency() -> None:
    assert undeclared(imported(["cycles", "connectors"]), names(RUNTIME)) == []


def test_every_import_of_the_tests_and_benches_is_declared() -> None:
    modules = imported(["tests", "bench"])
    assert undeclared(modules, names(RUNTIME) | names(TEST)) == []


@pytest.mark.parametrize("requirement", RUNTIME + TEST, ids=str)
def test_each_dependency_has_a_floor_and_a_ceiling_around_its_pin(requirement: Requirement) -> None:
    operators = {spec.operator for spec in requirement.specifier}
    assert ">=" in operators and "<" in operators, f"{requirement}: a floor and a ceiling"
    pinned = pins().get(canonicalize_name(requirement.name))
    assert pinned is not None, f"{requirement.name} is not pinned in constraints.txt"
    assert requirement.specifier.contains(pinned, prereleases=True), (
        f"constraints.txt pins {requirement.name}=={pinned}, outside {requirement.specifier}"
    )
    floor = Version(next(s.version for s in requirement.specifier if s.operator == ">="))
    tested = Version(pinned).release
    assert tested[: len(floor.release)] == floor.release, (
        f"{requirement.name}: the floor {floor} is not the tested {pinned}; raise it"
    )
