"""Architecture rules that keep the code easy to change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    """The pure core never imports Prefect (import-linter contracts in pyproject.toml)."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is part of the test extra"
    proc = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "broken" not in proc.stdout.split("Contracts:")[-1].replace("0 broken", "")


def _contracts() -> list[dict]:
    import tomllib

    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]


def _top_modules() -> set[str]:
    """Each module and package directly under cycles/, and connectors."""
    found = {f"cycles.{p.stem}" for p in (ROOT / "cycles").glob("*.py") if p.stem != "__init__"}
    found |= {f"cycles.{p.parent.name}" for p in (ROOT / "cycles").glob("*/__init__.py")}
    return found | {"connectors"}


def test_every_module_has_a_layer() -> None:
    """A new module must be placed in the layers contract (else nothing checks its imports);
    one below the Prefect layer is also one that must never import Prefect."""
    layers, no_prefect = (c for c in _contracts() if c["type"] in ("layers", "forbidden"))
    ranked = [[m.strip() for m in layer.split(":")] for layer in layers["layers"]]
    placed = [m for layer in ranked for m in layer]
    assert sorted(placed) == sorted(set(placed))
    assert set(placed) - _top_modules() == set(), "these are in the contract but not in the tree"
    assert _top_modules() - set(placed) == set(), "place these in pyproject's layers contract"
    below_prefect = {m for layer in ranked[ranked.index(["cycles.flow"]) + 2 :] for m in layer}
    assert set(no_prefect["source_modules"]) == below_prefect


def test_no_runtime_import_cycles() -> None:
    """No two modules import each other at run time, directly or through others (imports for
    type checking only do not count)."""
    import grimp

    graph = grimp.build_graph(
        "cycles", "connectors", exclude_type_checking_imports=True, cache_dir=None
    )
    cycles = [
        (module, other)
        for module in graph.modules
        for other in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=other, imported=module)
    ]
    assert cycles == []


def test_cli_help_imports_nothing_heavy() -> None:
    code = (
        "import sys; from cycles.cli import main; main(['--help']); "
        "heavy = [m for m in ('prefect', 'pandas', 'great_expectations', 'sqlalchemy') if m in sys.modules]; "
        "sys.stderr.write(repr(heavy))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.stderr.strip() == "[]", proc.stderr


def test_local_run_does_not_import_prefect_or_gx(tmp_path: Path) -> None:
    code = (
        "import sys; from cycles.cli import main; "
        "rc = main(['run', 'referrals', '--period', '2025-11', '--dry-run', '--json']); "
        "sys.stderr.write(repr([rc] + [m for m in ('prefect', 'great_expectations') if m in sys.modules]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, check=False)  # fmt: skip
    assert proc.stderr.strip() == "[0]", proc.stderr


def test_history_imports_nothing_heavy(tmp_path: Path) -> None:
    """`radar history` reads a database at HEAD over the plain driver, without SQLAlchemy."""
    from cycles.store import Store

    Store(f"sqlite:///{tmp_path / '.radar' / 'radar.db'}").dispose()
    heavy = ("sqlalchemy", "alembic", "pandas", "prefect", "great_expectations")
    code = (
        "import sys; from cycles.cli import main; "
        "rc = [main(['history', 'referrals', *flag]) for flag in ([], ['--json'])]; "
        f"sys.stderr.write(repr(rc + [m for m in {heavy!r} if m in sys.modules]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}, check=False)  # fmt: skip
    assert proc.stderr.strip() == "[0, 0]", proc.stderr


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff
    proc = subprocess.run(
        [ruff, "check", "."], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout


def test_types_check() -> None:
    mypy = shutil.which("mypy", path=str(Path(sys.executable).parent))
    assert mypy
    proc = subprocess.run([mypy], cwd=ROOT, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout
