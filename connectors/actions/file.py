"""`file` actions: write an export (CSV or JSON), e.g. the list of customers to contact.

Where: `path` and `source` are relative to the declaration's directory and, after their
placeholders are filled in and symlinks and `..` resolved, must lie in that directory's tree or
in a directory the operator lists in `RADAR_FILE_ACTION_DIRS` (absolute paths separated by
`os.pathsep`). A `path` that is itself a symlink is refused.

How: the export is written to a new temporary file with a random name in the target's
directory (created exclusively, never through a link), synced, then renamed onto the target, so
a reader sees the old file or the whole new one.

Exactly once: `<path>.radar-key` records the action's idempotency key, the number of rows and
the new export's identity (inode, size, mtime), written the same way and renamed into place
just before the export is. A run that finds the export its record names, under its own key,
returns the recorded reach and writes nothing. A process that dies between the two renames
leaves a record that names a file not in place: the re-run writes the export, once. (Recording
after the export instead left an export without its record, written again by the re-run.)
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import Field

from connectors.actions.base import Action, ActionConfig, ActionContext
from cycles.errors import ActionError

DIRS_ENV = "RADAR_FILE_ACTION_DIRS"
KEY_SUFFIX = ".radar-key"


class FileConfig(ActionConfig):
    type: Literal["file"] = "file"
    path: str  # may use {period}, {outcome}, {params.X}; relative to the declaration
    format: Literal["csv", "json"] | None = None  # default: from the path's suffix
    rows: list[dict[str, Any]] = Field(default_factory=list)  # the records to write
    source: str | None = None  # or a CSV/Parquet file whose rows are exported


class FileAction(Action):
    type = "file"
    Config = FileConfig
    exactly_once = True  # a re-run finds the export's .radar-key
    config: FileConfig

    def check(self, base_dir: Path) -> None:
        """What can be checked before the period's values are known: placeholders are filled
        with a plain name, so an absolute path or `..` outside the project is caught here."""
        path = _confined("path", self.config.path, base_dir, unplaced=True)
        _refuse_link(path)
        source = self.config.source
        if source:
            found = _confined("source", source, base_dir, unplaced=True)
            if "{" not in source and not found.is_file():
                raise ActionError(f"source: file not found: {found}")

    def run(self, context: ActionContext) -> float | None:
        spec = self.rendered(context)
        target = _confined("path", str(spec["path"]), context.base_dir)
        _refuse_link(target)
        done = _recorded(target, context.key)
        if done is not None:
            return done
        rows = spec["rows"] or self._source_rows(spec["source"], context)
        fmt = spec["format"] or ("json" if target.suffix == ".json" else "csv")
        reach = float(len(rows))
        record: dict[str, Any] = {"key": context.key, "reach": reach}
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            if fmt == "json":
                staged = _stage(target, lambda h: h.write(json.dumps(rows, indent=2, default=str)))
            else:
                staged = _stage(target, lambda h: _write_csv(h, rows))
            try:  # the record first, naming the staged export; then the export (see above)
                record["export"] = _identity(staged)
                _replace(_key_file(target), lambda h: h.write(json.dumps(record)))
                staged.replace(target)  # atomic: a reader never sees half an export
            except BaseException:
                with contextlib.suppress(OSError):
                    staged.unlink()
                raise
            _sync_dir(target.parent)
        except OSError as exc:
            raise ActionError(f"cannot write {target}: {exc.strerror or exc}") from exc
        return reach

    @staticmethod
    def _source_rows(source: str | None, context: ActionContext) -> list[dict[str, Any]]:
        if not source:
            return []
        import pandas as pd

        path = _confined("source", str(source), context.base_dir)
        try:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise ActionError(f"cannot read {path}: {exc}") from exc
        return frame.to_dict(orient="records")


def _unplaced(text: str) -> str:
    """`text` with every `{placeholder}` replaced by a plain name (for checks before a run)."""
    import re

    return re.sub(r"\{[^{}]*\}", "x", text)


def allowed_dirs(base_dir: Path) -> list[Path]:
    """The project's directory, then the directories the operator allowed, all resolved."""
    dirs = [base_dir.resolve()]
    for entry in os.environ.get(DIRS_ENV, "").split(os.pathsep):
        if not entry.strip():
            continue
        path = Path(entry.strip()).expanduser()
        if not path.is_absolute():
            raise ActionError(f"{DIRS_ENV}: {entry.strip()!r} is not an absolute directory")
        dirs.append(path.resolve())
    return dirs


def _confined(key: str, value: str, base_dir: Path, *, unplaced: bool = False) -> Path:
    """`value` (relative to the declaration) resolved; refused outside the allowed directories.
    The last component stays unresolved so that a link there can be seen (and refused).
    `unplaced`: check `value` with its placeholders filled with a plain name."""
    raw = Path(_unplaced(value) if unplaced else value).expanduser()
    if not raw.is_absolute():
        raw = base_dir / raw
    if not raw.name or raw.name in (".", ".."):
        resolved = raw.resolve()
    else:
        resolved = raw.parent.resolve() / raw.name
    final = resolved.resolve()  # a link as the last component: where it points
    dirs = allowed_dirs(base_dir)
    if not all(any(p.is_relative_to(d) for d in dirs) for p in (resolved, final)):
        raise ActionError(
            f"{key}: {value} is outside the project ({dirs[0]}); an operator can allow a "
            f"directory with {DIRS_ENV}"
        )
    return resolved


def _refuse_link(target: Path) -> None:
    if target.is_symlink():
        raise ActionError(f"path: {target} is a symlink; radar does not write through links")


def _key_file(target: Path) -> Path:
    return target.with_name(target.name + KEY_SUFFIX)


def _identity(path: Path) -> dict[str, int]:
    """What tells a file from the one it replaces: a rename keeps all three."""
    found = path.stat(follow_symlinks=False)
    return {"inode": found.st_ino, "size": found.st_size, "mtime_ns": found.st_mtime_ns}


def _recorded(target: Path, key: str) -> float | None:
    """The reach recorded beside an export written for `key`, or None. The record names its
    export (a record without a name was written after its export was in place)."""
    if not target.is_file() or target.is_symlink():
        return None
    try:
        fd = os.open(_key_file(target), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd, encoding="utf-8") as handle:
            record = json.loads(handle.read(4096))
        if not isinstance(record, dict) or record.get("key") != key:
            return None
        if "export" in record and record["export"] != _identity(target):
            return None  # its run died before this export was in place
    except (OSError, ValueError):
        return None
    reach = record.get("reach")
    return float(reach) if isinstance(reach, int | float) else None


def _replace(target: Path, write: Callable[[IO[str]], Any]) -> None:
    """Write a new file beside `target` (`_stage`), then rename it onto `target`."""
    tmp = _stage(target, write)
    try:
        tmp.replace(target)  # atomic: a reader never sees half a file
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _sync_dir(target.parent)


def _stage(target: Path, write: Callable[[IO[str]], Any]) -> Path:
    """A new file beside `target` (random name, created exclusively, never through a link)
    holding what `write` wrote, synced."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
        try:
            fd = os.open(tmp, flags, 0o666)  # the umask applies, as for any new file
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free temporary name beside {target}")
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return tmp


def _sync_dir(directory: Path) -> None:
    """Make a rename in `directory` durable (where the platform allows it)."""
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def _write_csv(handle: IO[str], rows: list[dict[str, Any]]) -> None:
    import csv

    columns = list(dict.fromkeys(k for row in rows for k in row))
    writer = csv.DictWriter(handle, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
