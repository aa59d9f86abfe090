"""radar finds a Prefect API wherever Prefect 3 itself reads one (cycles.prefect_settings), and
agrees with Prefect's own settings on each source, their order and an empty value."""

from __future__ import annotations

from pathlib import Path

import pytest

from cycles.prefect_settings import api_url

from conftest import radar

ENV = "http://env:4200/api"
DOTENV = "http://dotenv:4200/api"
PREFECT_TOML = "http://prefect-toml:4200/api"
PYPROJECT = "http://pyproject:4200/api"
PROFILE = "http://profile:4200/api"
OTHER = "http://other-profile:4200/api"
PROFILES = f'active = "team"\n[profiles.team]\nPREFECT_API_URL = "{PROFILE}"\n[profiles.other]\n'
ISOLATE = ("PREFECT_API_URL", "PREFECT_PROFILE", "PREFECT_PROFILES_PATH", "PREFECT_TEST_MODE",
           "PREFECT_UNIT_TEST_MODE", "PREFECT_TESTING_UNIT_TEST_MODE", "PREFECT_TESTING_TEST_MODE")  # fmt: skip


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, no Prefect setting in the environment, an empty PREFECT_HOME."""
    for name in ISOLATE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


def prefect_reads() -> str | None:
    """What Prefect's own settings read now (fresh, not the ones of this process's context)."""
    from prefect.settings import Settings
    from prefect.settings.sources import _file_cache

    _file_cache.clear()  # keyed by relative path and mtime: each test's files are new
    return Settings().api.url


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def setup(case: str, here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = here.parent / "home"
    elsewhere = here.parent / "elsewhere" / "profiles.toml"
    if case == "environment":
        monkeypatch.setenv("PREFECT_API_URL", ENV)
    elif case == ".env":
        write(here / ".env", f"# local settings\nexport PREFECT_API_URL='{DOTENV}'\n")
    elif case == ".env, lower case":
        write(here / ".env", f"prefect_api_url={DOTENV}\n")
    elif case == "prefect.toml":
        write(here / "prefect.toml", f'[api]\nurl = "{PREFECT_TOML}"\n')
    elif case == "pyproject.toml":
        write(here / "pyproject.toml", f'[project]\nname = "x"\n[tool.prefect.api]\nurl = "{PYPROJECT}"\n')  # fmt: skip
    elif case == "profile in PREFECT_HOME":
        write(home / "profiles.toml", PROFILES)
    elif case == "PREFECT_PROFILE chooses a profile":
        write(home / "profiles.toml", PROFILES.replace("[profiles.other]\n", f'[profiles.other]\nPREFECT_API_URL = "{OTHER}"\n'))  # fmt: skip
        monkeypatch.setenv("PREFECT_PROFILE", "other")
    elif case == "an unknown active profile":
        write(home / "profiles.toml", PROFILES.replace('active = "team"', 'active = "gone"'))
    elif case == "PREFECT_PROFILES_PATH in the environment":
        write(elsewhere, PROFILES)
        monkeypatch.setenv("PREFECT_PROFILES_PATH", str(elsewhere))
    elif case == "PREFECT_PROFILES_PATH in .env":
        write(elsewhere, PROFILES)
        write(here / ".env", f"PREFECT_PROFILES_PATH={elsewhere}\n")
    elif case == "profiles_path in prefect.toml":
        write(elsewhere, PROFILES)
        write(here / "prefect.toml", f'profiles_path = "{elsewhere}"\n')
    elif case == "profiles_path in pyproject.toml":
        write(elsewhere, PROFILES)
        write(here / "pyproject.toml", f'[tool.prefect]\nprofiles_path = "{elsewhere}"\n')
    elif case == "test mode ignores the profile":
        write(home / "profiles.toml", PROFILES)
        monkeypatch.setenv("PREFECT_TEST_MODE", "1")
    elif case != "nothing":
        raise AssertionError(case)


CASES = [
    ("nothing", None),
    ("environment", ENV),
    (".env", DOTENV),
    (".env, lower case", DOTENV),
    ("prefect.toml", PREFECT_TOML),
    ("pyproject.toml", PYPROJECT),
    ("profile in PREFECT_HOME", PROFILE),
    ("PREFECT_PROFILE chooses a profile", OTHER),
    ("an unknown active profile", None),
    ("PREFECT_PROFILES_PATH in the environment", PROFILE),
    ("PREFECT_PROFILES_PATH in .env", PROFILE),
    ("profiles_path in prefect.toml", PROFILE),
    ("profiles_path in pyproject.toml", PROFILE),
    ("test mode ignores the profile", None),
]


@pytest.mark.parametrize(("case", "expected"), CASES, ids=[c for c, _ in CASES])
def test_each_source_prefect_reads(
    case: str, expected: str | None, here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup(case, here, monkeypatch)
    assert api_url() == expected
    assert prefect_reads() == expected  # and Prefect agrees


def test_the_first_source_that_sets_it_wins(here: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Prefect's order: environment, .env, prefect.toml, pyproject.toml, profile."""
    for case in (
        "profile in PREFECT_HOME",
        "pyproject.toml",
        "prefect.toml",
        ".env",
        "environment",
    ):
        setup(case, here, monkeypatch)
    for expected, drop in (
        (ENV, lambda: monkeypatch.delenv("PREFECT_API_URL")),
        (DOTENV, lambda: (here / ".env").unlink()),
        (PREFECT_TOML, lambda: (here / "prefect.toml").unlink()),
        (PYPROJECT, lambda: (here / "pyproject.toml").unlink()),
        (PROFILE, lambda: None),
    ):
        assert api_url() == prefect_reads() == expected
        drop()


def test_an_empty_value_hides_the_sources_below_it(
    here: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    setup("profile in PREFECT_HOME", here, monkeypatch)
    write(here / ".env", "PREFECT_API_URL=\n")
    assert not api_url() and not prefect_reads()


@pytest.mark.slow
def test_a_url_in_dot_env_is_the_api_radar_uses(tmp_path: Path) -> None:
    """Before, such a user silently got a cycle without Prefect; now radar talks to that API."""
    (tmp_path / ".env").write_text("PREFECT_API_URL=http://127.0.0.1:1/api\n")
    proc = radar("campaign-ended", "referrals", cwd=tmp_path, env={"PREFECT_HOME": str(tmp_path)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("radar: cannot reach the Prefect API at http://127.0.0.1:1/api")
