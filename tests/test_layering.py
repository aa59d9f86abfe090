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
