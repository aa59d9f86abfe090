"""Python and file actions stay in their project; nothing radar writes follows a planted link.

Every case runs on real files; the CLI cases run `radar` in a subprocess against the default
SQLite history in the working directory.
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import textwrap
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from connectors import registry
from connectors.actions.base import ActionContext
from connectors.actions.file import FileAction, FileConfig
from connectors.actions.python import PythonAction, PythonConfig
from cycles.errors import ActionError, AlreadyRunning, StoreError
from cycles.periods import Cadence, Period
from cycles.store import Store
from cycles.store.files import open_lock_file, prepare_sqlite_file
from cycles.store.locks import _key, run_lock

from conftest import months, radar, write_declaration, write_monthly_csv

PERIOD = str(Period.containing(date.today(), Cadence.monthly))
KEY = f"refer/{PERIOD}/incentive/ask"


@pytest.fixture(autouse=True)
def _no_operator_allowances(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RADAR_PYTHON_ACTIONS", raising=False)
    monkeypatch.delenv("RADAR_FILE_ACTION_DIRS", raising=False)


def project(directory: Path, action: str, files: dict[str, str] | None = None) -> Path:
    """A declaration in `directory` whose approach `incentive` has the one action `action`."""
    first = str(Period.parse(PERIOD, Cadence.monthly) - 24)
    write_monthly_csv(directory / "data" / "rate.csv", dict.fromkeys(months(first, 25), 0.18))
    for name, body in (files or {}).items():
        (directory / name).write_text(textwrap.dedent(body))
    decl = write_declaration(directory)
    anchor = "    adjust: {usd: {step: 10, max: 40}}\n"
    decl.write_text(decl.read_text().replace(anchor, f"{anchor}    actions:\n      - {action}\n"))
    return decl


def ledger(directory: Path, key: str = KEY) -> Any:
    store = Store(f"sqlite:///{directory / '.radar' / 'radar.db'}")
    try:
        return store.get_action(key)
    finally:
        store._engine.dispose()


def context(base_dir: Path, key: str = KEY, **params: Any) -> ActionContext:
    return ActionContext(
        outcome="refer", period=PERIOD, approach="incentive", params=params, key=key,
        base_dir=base_dir,
    )  # fmt: skip


# -- 1. whatever a python callable raises is a failed action --------------------------------------

RAISING = {
    "sys.exit(0) in the callable": ("quit:ask", {"quit.py": "import sys\ndef ask(context):\n    sys.exit(0)\n"}, "SystemExit: 0"),
    "sys.exit() in the callable": ("quit:ask", {"quit.py": "import sys\ndef ask(context):\n    sys.exit()\n"}, "SystemExit"),
    "KeyboardInterrupt": ("quit:ask", {"quit.py": "def ask(context):\n    raise KeyboardInterrupt\n"}, "KeyboardInterrupt"),
    "a two-line message": ("quit:ask", {"quit.py": "def ask(context):\n    raise ValueError('one\\ntwo')\n"}, "ValueError: one two"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("callable_", "files", "said"), RAISING.values(), ids=RAISING.keys())
def test_a_callable_that_exits_is_a_failed_action(
    workdir: Path, callable_: str, files: dict[str, str], said: str
) -> None:
    decl = project(workdir, f"{{name: ask, type: python, callable: '{callable_}'}}", files)
    ran = radar("run", str(decl), "--period", PERIOD, "--json", cwd=workdir)
    assert ran.returncode == 1, ran.stdout + ran.stderr
    assert ran.stderr.count("\n") == 1 and "Traceback" not in ran.stderr
    assert "radar: deployment failed: action ask: " in ran.stderr and said in ran.stderr
    recorded = ledger(workdir)
    assert (recorded.status, recorded.attempts) == ("failed", 1)
    assert said in recorded.error


@pytest.mark.slow
def test_a_module_that_exits_on_import_stops_the_run_before_anything_is_recorded(
    workdir: Path,
) -> None:
    files = {"quit.py": "import sys\nsys.exit(3)\ndef ask(context):\n    return 1\n"}
    decl = project(workdir, "{name: ask, type: python, callable: 'quit:ask'}", files)
    ran = radar("run", str(decl), "--period", PERIOD, "--json", cwd=workdir)
    assert ran.returncode == 2 and ran.stderr.count("\n") == 1, ran.stderr
    assert "Traceback" not in ran.stderr
    assert "cannot import quit:ask: SystemExit: 3" in ran.stderr
    assert ledger(workdir) is None  # checked before the run: nothing recorded


@pytest.mark.slow
def test_sys_exit_allowed_by_the_operator_fails_the_action_too(workdir: Path) -> None:
    decl = project(workdir, "{name: ask, type: python, callable: 'sys:exit'}")
    ran = radar("run", str(decl), "--period", PERIOD, "--json", cwd=workdir,
                env={"RADAR_PYTHON_ACTIONS": "sys"})  # fmt: skip
    assert ran.returncode == 1 and ran.stderr.count("\n") == 1, ran.stderr
    assert "action ask: sys:exit raised SystemExit: ActionContext(" in ran.stderr
    assert ledger(workdir).status == "failed"


def test_generator_exit_propagates(tmp_path: Path) -> None:
    (tmp_path / "gen.py").write_text("def ask(context):\n    raise GeneratorExit\n")
    with pytest.raises(GeneratorExit):
        PythonAction(PythonConfig(name="ask", callable="gen:ask")).run(context(tmp_path))


@pytest.mark.slow
def test_the_callable_gets_the_idempotency_key(workdir: Path) -> None:
    body = """\
        from pathlib import Path
        def ask(context):
            marker = Path(__file__).with_name("sent") / context.key.replace("/", "_")
            if marker.exists():
                return 0
            marker.parent.mkdir(exist_ok=True)
            marker.write_text(context.key)
            return 7
    """
    decl = project(
        workdir, "{name: ask, type: python, callable: 'deliver:ask'}", {"deliver.py": body}
    )
    ran = radar("run", str(decl), "--period", PERIOD, "--json", cwd=workdir)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["actions"][0]["reach"] == 7
    assert [p.read_text() for p in (workdir / "sent").iterdir()] == [KEY]


# -- 2. python actions: project modules, plugins and what the operator allows ---------------------

PIPEPAGER = (
    "{{name: ask, type: python, callable: 'pydoc:pipepager', kwargs: {{cmd: 'id > {marker}'}}}}"
)


@pytest.mark.slow
def test_pydoc_pipepager_is_refused_by_validate_and_run(workdir: Path) -> None:
    marker = workdir / "owned"
    decl = project(workdir, PIPEPAGER.format(marker=marker))
    checked = radar("validate", str(decl), cwd=workdir)
    assert checked.returncode == 2 and checked.stderr.count("\n") == 1, checked.stderr
    assert "refer.yaml:" in checked.stderr and "approaches[0].actions[0]" in checked.stderr
    assert "module 'pydoc' is not allowed" in checked.stderr
    assert "RADAR_PYTHON_ACTIONS=pydoc" in checked.stderr
    ran = radar("run", str(decl), "--period", PERIOD, "--json", cwd=workdir)
    # refused as a declaration error before anything runs or is recorded
    assert ran.returncode == 2 and ran.stderr.count("\n") == 1, ran.stderr
    assert "module 'pydoc' is not allowed" in ran.stderr
    assert not marker.exists()
    assert ledger(workdir) is None
    allowed = radar("validate", str(decl), cwd=workdir, env={"RADAR_PYTHON_ACTIONS": "json,pydoc"})
    assert allowed.returncode == 0, allowed.stderr
    assert not marker.exists()


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Path]:
    """A directory on sys.path, outside every declaration's project."""
    path = tmp_path / "site"
    path.mkdir()
    sys.path.insert(0, str(path))
    before = set(sys.modules)
    yield path
    sys.path.remove(str(path))
    for name in set(sys.modules) - before:
        if name.startswith(("loud", "shouty")):
            del sys.modules[name]
    registry.clear_cache()


def python_action(callable_: str, **kwargs: Any) -> PythonAction:
    return PythonAction(PythonConfig(name="ask", callable=callable_, kwargs=kwargs))


def test_an_installed_module_is_refused_before_it_is_imported(
    tmp_path: Path, site: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (site / "loud.py").write_text(
        "from pathlib import Path\nPath(__file__).with_name('imported').touch()\n"
        "def act(context):\n    return 1\n"
    )
    decl_dir = tmp_path / "project"
    decl_dir.mkdir()
    refused = r"^module 'loud' is not allowed in python actions"
    with pytest.raises(ActionError, match=refused):
        python_action("loud:act").check(decl_dir)
    with pytest.raises(ActionError, match=refused):
        python_action("loud:act").run(context(decl_dir))
    assert not (site / "imported").exists()
    monkeypatch.setenv("RADAR_PYTHON_ACTIONS", "lou")  # a prefix of the name, not of a module
    with pytest.raises(ActionError, match="not allowed"):
        python_action("loud:act").check(decl_dir)
    monkeypatch.setenv("RADAR_PYTHON_ACTIONS", " other , loud ")
    assert python_action("loud:act").run(context(decl_dir)) == 1.0
    assert (site / "imported").exists()


def test_a_missing_module_still_says_it_cannot_be_imported(tmp_path: Path) -> None:
    with pytest.raises(ActionError, match=r"^cannot import no_such_module:act: no module named"):
        python_action("no_such_module:act").check(tmp_path)


def test_project_modules_are_allowed_but_not_what_they_import(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "deliver.py").write_text(
        "import os\nfrom pydoc import pipepager\n"
        "class Counter:\n    def __call__(self, context):\n        return 2\n"
        "count = Counter()\n"
        "queue = []\n"
        "def ask(context, *, n):\n    return n\n"
    )
    assert python_action("pkg.deliver:ask", n=4).run(context(tmp_path)) == 4.0
    assert python_action("pkg.deliver:count").run(context(tmp_path)) == 2.0
    for name, defined in (("pipepager", "pydoc"), ("os.system", "posix")):
        with pytest.raises(ActionError, match=f"is defined in '{defined}'.*not allowed"):
            python_action(f"pkg.deliver:{name}", cmd="id").check(tmp_path)
    with pytest.raises(ActionError, match="cannot tell which module defines it"):
        python_action("pkg.deliver:queue.append").check(tmp_path)
    with pytest.raises(ActionError, match="dunder"):
        python_action("pkg.deliver:Counter.__init__").check(tmp_path)


def test_a_project_module_linked_from_outside_is_refused(tmp_path: Path) -> None:
    outside, decl_dir = tmp_path / "outside", tmp_path / "project"
    outside.mkdir()
    decl_dir.mkdir()
    (outside / "helper.py").write_text("def act(context):\n    return 1\n")
    (decl_dir / "helper.py").symlink_to(outside / "helper.py")
    with pytest.raises(ActionError, match="module 'helper' is not allowed"):
        python_action("helper:act").check(decl_dir)


def test_plugin_modules_and_their_submodules_are_allowed(tmp_path: Path, site: Path) -> None:
    package = site / "shouty"
    (package / "extra").mkdir(parents=True)
    (package / "__init__.py").write_text(
        "from connectors.actions.base import Action\n"
        "class Shout(Action):\n    type = 'shout2'\n    def run(self, context):\n        return 1\n"
        "def act(context):\n    return 5\n"
    )
    (package / "extra" / "__init__.py").write_text("")
    (package / "extra" / "more.py").write_text("def act(context):\n    return 6\n")
    (site / "shouty_other.py").write_text("def act(context):\n    return 7\n")
    info = site / "shouty-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shouty\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[radar.actions]\nshout2 = shouty:Shout\n")
    registry.clear_cache()
    assert python_action("shouty:act").run(context(tmp_path)) == 5.0
    assert python_action("shouty.extra.more:act").run(context(tmp_path)) == 6.0
    with pytest.raises(ActionError, match="module 'shouty_other' is not allowed"):
        python_action("shouty_other:act").check(tmp_path)
    # radar's own modules are registered the same way, but are no callables
    with pytest.raises(ActionError, match=r"module 'connectors\.actions\.python' is not allowed"):
        python_action("connectors.actions.python:_resolve_in").check(tmp_path)


# -- 3. file actions stay in the project ----------------------------------------------------------


def file_action(**config: Any) -> FileAction:
    return FileAction(FileConfig(name="ask", **{"rows": [{"a": 1}], **config}))


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A directory beside the project, holding a secret."""
    path = tmp_path / "outside"
    path.mkdir()
    (path / "shadow").write_text("root:secret\n")
    return path


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    "path",
    ["{outside}/x.csv", "../outside/x.csv", "out/../../outside/x.csv", "link/x.csv",
     "~/radar-never-{period}.csv"],
)  # fmt: skip
def test_file_path_outside_the_project_is_refused(proj: Path, outside: Path, path: str) -> None:
    (proj / "link").symlink_to(outside)
    action = file_action(path=path.replace("{outside}", str(outside)))
    for step in ("check", "run"):
        with pytest.raises(
            ActionError,
            match=r"^path: .* is outside the project \(.*\); an operator can allow a directory with RADAR_FILE_ACTION_DIRS$",
        ):
            action.check(proj) if step == "check" else action.run(context(proj))
    assert sorted(p.name for p in outside.iterdir()) == ["shadow"]


def test_a_rendered_path_is_checked(proj: Path, outside: Path) -> None:
    action = file_action(path="{params.folder}/x.csv")
    action.check(proj)  # nothing to see before the values are known
    with pytest.raises(ActionError, match="is outside the project"):
        action.run(context(proj, folder=str(outside)))
    assert action.run(context(proj, folder="exports")) == 1.0
    assert (proj / "exports" / "x.csv").read_text().splitlines() == ["a", "1"]


def test_file_source_outside_the_project_is_refused(proj: Path, outside: Path) -> None:
    (proj / "rows.csv").symlink_to(outside / "shadow")
    for source in (str(outside / "shadow"), "../outside/shadow", "rows.csv"):
        action = FileAction(FileConfig(name="ask", path="out.csv", source=source))
        for step in ("check", "run"):
            with pytest.raises(ActionError, match=r"^source: .* is outside the project"):
                action.check(proj) if step == "check" else action.run(context(proj))
    assert not (proj / "out.csv").exists()


def test_the_operator_can_allow_a_directory(
    proj: Path, outside: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "RADAR_FILE_ACTION_DIRS", os.pathsep.join(["", str(outside / "nope"), str(outside)])
    )
    action = FileAction(
        FileConfig(name="ask", path=str(outside / "out.json"), source=str(outside / "rows.csv"))
    )
    (outside / "rows.csv").write_text("a,b\n1,2\n")
    action.check(proj)
    assert action.run(context(proj)) == 1.0
    assert json.loads((outside / "out.json").read_text()) == [{"a": 1, "b": 2}]
    monkeypatch.setenv("RADAR_FILE_ACTION_DIRS", "relative/dir")
    with pytest.raises(
        ActionError, match=r"^RADAR_FILE_ACTION_DIRS: 'relative/dir' is not an absolute directory$"
    ):
        action.check(proj)


@pytest.mark.slow
def test_validate_refuses_a_file_action_outside_the_project(workdir: Path) -> None:
    decl = project(
        workdir, "{name: ask, type: file, path: '../elsewhere/{period}.csv', rows: [{a: 1}]}"
    )
    checked = radar("validate", str(decl), cwd=workdir)
    assert checked.returncode == 2 and checked.stderr.count("\n") == 1, checked.stderr
    assert (
        "approaches[0].actions[0]: action 'ask': path: ../elsewhere/{period}.csv is outside the project"
        in checked.stderr
    )


# -- 4. links planted at names radar writes -------------------------------------------------------


def test_a_planted_tmp_link_is_not_written_through(proj: Path, outside: Path) -> None:
    (proj / "out").mkdir()
    (proj / "out" / "x.csv.tmp").symlink_to(outside / "shadow")
    assert file_action(path="out/x.csv").run(context(proj)) == 1.0
    assert (outside / "shadow").read_text() == "root:secret\n"
    assert (proj / "out" / "x.csv").read_text().splitlines() == ["a", "1"]
    assert sorted(p.name for p in (proj / "out").iterdir()) == [
        "x.csv",
        "x.csv.radar-key",
        "x.csv.tmp",
    ]


def test_a_target_that_is_a_link_is_refused(proj: Path) -> None:
    (proj / "real.csv").write_text("kept\n")
    (proj / "x.csv").symlink_to(proj / "real.csv")
    for step in ("check", "run"):
        with pytest.raises(ActionError, match=r"^path: .*x\.csv is a symlink"):
            action = file_action(path="x.csv")
            action.check(proj) if step == "check" else action.run(context(proj))
    assert (proj / "real.csv").read_text() == "kept\n"


def lock_path(database: Path, outcome: str = "refer", period: str = PERIOD) -> Path:
    return database.with_name(database.name + ".locks") / f"{_key(outcome, period)[1]}.lock"


def test_run_locks_are_private_and_never_opened_through_a_link(
    tmp_path: Path, outside: Path
) -> None:
    database = tmp_path / "history.db"
    engine = sa.create_engine(f"sqlite:///{database}")

    def hold(outcome: str, wait: float = 0) -> None:
        with run_lock(engine, outcome, PERIOD, wait):
            pass

    with run_lock(engine, "refer", PERIOD):
        busy = rf"refer/{PERIOD} is already running \(pid {os.getpid()} on "
        with pytest.raises(AlreadyRunning, match=busy):
            hold("refer", wait=0.3)
        hold("other")  # another outcome never waits
    path = lock_path(database)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    planted = lock_path(database, "planted")
    planted.symlink_to(outside / "shadow")
    link = f"^cannot open the run lock {re.escape(str(planted))}: it is a symlink$"
    with pytest.raises(StoreError, match=link):
        hold("planted")
    os.link(outside / "shadow", lock_path(database, "hard"))
    with pytest.raises(StoreError, match="not a regular file of its own"):
        hold("hard")
    assert (outside / "shadow").read_text() == "root:secret\n"
    engine.dispose()


def test_a_linked_lock_directory_is_refused(tmp_path: Path, outside: Path) -> None:
    (tmp_path / "history.db.locks").symlink_to(outside)
    with pytest.raises(OSError):
        open_lock_file(tmp_path / "history.db.locks" / "radar-x.lock")
    assert sorted(p.name for p in outside.iterdir()) == ["shadow"]


def test_the_sqlite_history_is_created_private(tmp_path: Path, outside: Path) -> None:
    import sqlite3

    database = tmp_path / "work" / ".radar" / "radar.db"
    prepare_sqlite_file(database)
    assert stat.S_IMODE(database.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600 and database.read_bytes() == b""
    with sqlite3.connect(database) as conn:  # SQLite gives its WAL files the database's mode
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("CREATE TABLE t (x)")
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in database.parent.iterdir()}
    assert modes == {"radar.db": 0o600, "radar.db-wal": 0o600, "radar.db-shm": 0o600}
    conn.close()
    # existing permissions are never loosened, nor changed
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o750)
    shared.chmod(0o750)
    (shared / "radar.db").write_text("")
    (shared / "radar.db").chmod(0o640)
    prepare_sqlite_file(shared / "radar.db")
    assert stat.S_IMODE(shared.stat().st_mode) == 0o750
    assert stat.S_IMODE((shared / "radar.db").stat().st_mode) == 0o640
    # a link at the database's name is refused, and its target never created
    (shared / "linked.db").symlink_to(outside / "created-through-link.db")
    with pytest.raises(OSError):
        prepare_sqlite_file(shared / "linked.db")
    assert not (outside / "created-through-link.db").exists()


# -- 5. at most once: a file export remembers the key it was written for --------------------------


def test_an_export_written_for_its_key_is_not_written_again(proj: Path) -> None:
    action = file_action(path="out/{period}.json", rows=[{"a": 1}, {"a": 2}])
    assert action.run(context(proj)) == 2.0
    target = proj / "out" / f"{PERIOD}.json"
    before = target.stat()
    # the record names the export it was written with: a run killed before that export was in
    # place leaves a record naming another file (the re-run writes the export)
    assert json.loads(target.with_name(target.name + ".radar-key").read_text()) == {
        "key": KEY,
        "reach": 2.0,
        "export": {"inode": before.st_ino, "size": before.st_size, "mtime_ns": before.st_mtime_ns},
    }
    assert action.run(context(proj)) == 2.0
    after = target.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert action.run(context(proj, key=f"{KEY}-other")) == 2.0  # another key writes anew
    assert target.stat().st_ino != before.st_ino
    assert [p.name for p in (proj / "out").iterdir() if p.suffix == ".tmp"] == []


def test_a_run_that_died_between_the_renames_has_its_export_written_once(
    proj: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import connectors.actions.file as module

    action = file_action(path="out/x.csv")
    assert action.run(context(proj, key=f"{KEY}-before")) == 1.0  # an earlier key's export
    target = proj / "out" / "x.csv"
    earlier = target.stat().st_ino
    replace = module._replace

    def dies_after_the_record(path: Path, write: Any) -> None:
        replace(path, write)
        raise KeyboardInterrupt  # the process ends here: record renamed, export not yet

    monkeypatch.setattr(module, "_replace", dies_after_the_record)
    with pytest.raises(KeyboardInterrupt):
        action.run(context(proj))
    monkeypatch.undo()
    assert target.stat().st_ino == earlier  # not written: its record names another file
    assert action.run(context(proj)) == 1.0
    written = target.stat().st_ino
    assert written != earlier
    assert action.run(context(proj)) == 1.0
    assert target.stat().st_ino == written  # written once


@pytest.mark.slow
def test_a_rerun_that_lost_its_ledger_does_not_rewrite_the_export(workdir: Path) -> None:
    decl = project(
        workdir, "{name: ask, type: file, path: 'out/{period}.csv', rows: [{a: 1}, {a: 2}, {a: 3}]}"
    )
    ran = radar("run", str(decl), "--period", PERIOD, "--json", cwd=workdir)
    assert ran.returncode == 0, ran.stderr
    target = workdir / "out" / f"{PERIOD}.csv"
    inode = target.stat().st_ino
    # the process that wrote it died before the ledger said so: the history never recorded it
    for file in (workdir / ".radar").iterdir():
        if file.is_file():
            file.unlink()
    again = radar("run", str(decl), "--period", PERIOD, "--json", cwd=workdir)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["actions"][0]["reach"] == 3
    assert target.stat().st_ino == inode
    assert ledger(workdir).status == "succeeded"
