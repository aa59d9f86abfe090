"""Read declarations: YAML with line numbers, `${NAME}` from the environment, or Python modules.

Every problem becomes one DeclarationError naming the file, the line and the key path.
"""

from __future__ import annotations

import os
import re
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from pydantic import ValidationError

from cycles import secrets
from cycles.declaration.errors import Loc, key_path, line_of, ranked_errors
from cycles.declaration.model import Outcome
from cycles.errors import DeclarationError

YAML_SUFFIXES = (".yaml", ".yml")
_ENV = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def load(path: Path | str, *, env: str = "require") -> Outcome:
    """Load the one outcome declared in a YAML or Python file.

    `env="keep"` (for `radar deploy`, whose secrets live where the worker runs) leaves a `${NAME}`
    that is not set as it is written, where a plain string allows it.
    """
    path = Path(path)
    if not path.is_file():
        raise DeclarationError(f"no such declaration file: {path}")
    if path.suffix == ".py":
        outcomes = load_python(path)
        if len(outcomes) != 1:
            raise DeclarationError(
                f"expected one Outcome in {path}, found {len(outcomes)}; name the outcome instead",
                file=path,
            )
        return outcomes[0]
    return load_yaml(path, env=env)


# -- YAML -------------------------------------------------------------------------------------
def load_yaml(path: Path, *, env: str = "require") -> Outcome:
    data, lines = read_yaml(path)
    if not isinstance(data, dict):
        raise DeclarationError(
            "a declaration is a mapping of keys (outcome:, title:, ...)", file=path, line=1
        )
    templates: dict[Loc, str] = {}
    data = _substitute_env(data, (), _Env(path, lines, keep=env == "keep", templates=templates))
    try:
        outcome = Outcome.model_validate(data)
    except ValidationError as exc:
        raise _located_error(exc, path, lines, templates if env == "keep" else None) from None
    return outcome.with_source(path, lines, templates)


def read_yaml(path: Path) -> tuple[Any, dict[Loc, int]]:
    """Parse YAML keeping the (1-based) line of every key and list item."""
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    yaml = YAML(typ="rt")
    text = ""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:  # refused before it is read: parsing 50 MB takes a minute
            raise DeclarationError(
                f"{size:,} bytes: a declaration is at most {MAX_BYTES:,} bytes", file=path
            )
        text = path.read_text(encoding="utf-8")
        tree = yaml.load(text)
    except ReaderError as exc:  # a character YAML does not allow (NUL, other controls)
        line = text.count("\n", 0, exc.position) + 1 if isinstance(exc.position, int) else None
        char = exc.character
        shown = f"U+{char:04X}" if isinstance(char, int) else repr(char)
        problem = f"YAML syntax error: character {shown} is not allowed ({exc.reason})"
        raise DeclarationError(problem, file=path, line=line) from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        problem = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise DeclarationError(f"YAML syntax error: {problem}", file=path, line=line) from None
    except (YAMLError, UnicodeDecodeError, OSError) as exc:
        raise DeclarationError(f"cannot read YAML: {exc}", file=path) from None
    except RecursionError:  # ruamel recurses once per level: some hundred levels exhaust it
        raise DeclarationError(_TOO_DEEP, file=path) from None
    lines: dict[Loc, int] = {(): 1}
    try:
        return _plain(tree, (), lines), lines
    except RecursionError:
        raise DeclarationError(_TOO_DEEP, file=path) from None
    except _TooLarge:
        raise DeclarationError(_TOO_LARGE, file=path) from None
    except _Refused as exc:
        raise DeclarationError(
            exc.message, file=path, line=exc.line, key=key_path(exc.loc) or None
        ) from None


_TOO_DEEP = "YAML nested too deeply to read (mappings or lists some hundred levels deep)"
# A declaration has hundreds of values; aliases (`*name`) that repeat aliases can expand a few
# lines into billions ("billion laughs"), so expansion stops at this many.
MAX_VALUES = 100_000
_TOO_LARGE = f"YAML expands to more than {MAX_VALUES:,} values (aliases of aliases?)"


MAX_BYTES = 1_000_000  # a declaration is a few kB; a larger file is refused before it is read

# Explicit tags a declaration may use: YAML's own core types (`!!str 12`). Any other tag
# (`!x`, `!!python/object/apply:...`, `!!binary`) would make a value no check expects.
_CORE_TAGS = {
    f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")
}


class _TooLarge(Exception):
    pass


class _Refused(Exception):
    """A value YAML allows but a declaration does not (a tag, a NUL, a lone surrogate)."""

    def __init__(self, message: str, loc: Loc, line: int | None) -> None:
        super().__init__(message)
        self.message, self.loc, self.line = message, loc, line


def _tag(node: Any) -> str | None:
    tag = getattr(node, "tag", None)
    value = getattr(tag, "value", tag)
    return value if isinstance(value, str) else None


def _check_scalar(node: Any, loc: Loc, lines: dict[Loc, int]) -> Any:
    from ruamel.yaml.comments import TaggedScalar

    line = line_of(lines, loc)
    if isinstance(node, TaggedScalar):
        tag = _tag(node)
        if tag != "tag:yaml.org,2002:str":
            raise _Refused(f"YAML tag {tag} is not allowed in a declaration", loc, line)
        node = str(node.value)
    if isinstance(node, bytes | bytearray):
        raise _Refused("binary values (!!binary) are not allowed in a declaration", loc, line)
    if isinstance(node, str):
        if "\x00" in node:
            raise _Refused("a NUL character (\\0) is not allowed in a declaration", loc, line)
        if any("\ud800" <= c <= "\udfff" for c in node):
            raise _Refused("a lone surrogate (\\ud800-\\udfff) is not text", loc, line)
    return node


def _plain(node: Any, loc: Loc, lines: dict[Loc, int]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if len(lines) > MAX_VALUES:  # every key and list item expanded so far has a line
        raise _TooLarge
    tag = _tag(node) if isinstance(node, CommentedMap | CommentedSeq) else None
    if tag is not None and tag not in _CORE_TAGS:
        raise _Refused(f"YAML tag {tag} is not allowed in a declaration", loc, line_of(lines, loc))
    if isinstance(node, CommentedMap):
        out = {}
        for key, value in node.items():
            _check_scalar(key, loc, lines)
            child = (*loc, str(key))
            # a key a merge (`<<: *anchor`) brought in has no position: the mapping's line
            position = (node.lc.data or {}).get(key)
            lines[child] = position[0] + 1 if position else lines.get(loc, 1)
            out[str(key)] = _plain(value, child, lines)
        return out
    if isinstance(node, CommentedSeq):
        items = []
        for i, value in enumerate(node):
            lines[(*loc, i)] = node.lc.item(i)[0] + 1
            items.append(_plain(value, (*loc, i), lines))
        return items
    node = _check_scalar(node, loc, lines)
    if isinstance(node, str):
        return str(node)
    return node


@dataclass
class _Env:
    """How `${NAME}` is filled in while one file loads; `templates` keeps each key's text as
    written, so what is shown outside (a deployment's description) can show `${NAME}`."""

    path: Path
    lines: dict[Loc, int]
    keep: bool  # leave a variable that is not set as `${NAME}` instead of failing
    templates: dict[Loc, str]


def _substitute_env(node: Any, loc: Loc, env: _Env) -> Any:
    if isinstance(node, dict):
        return {k: _substitute_env(v, (*loc, k), env) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute_env(v, (*loc, i), env) for i, v in enumerate(node)]
    if isinstance(node, str) and "${" in node:
        env.templates[loc] = node
        return _expand(node, loc, env)
    return node


def _expand(text: str, loc: Loc, env: _Env) -> str:
    def value(match: re.Match[str]) -> str:
        if match.group(1):  # $${NAME} is a literal ${NAME}
            return "${" + match.group(2) + "}"
        name = match.group(2)
        if name not in os.environ:
            if env.keep:
                return match.group(0)
            raise DeclarationError(
                f"environment variable {name} is not set",
                file=env.path,
                line=line_of(env.lines, loc),
                key=key_path(loc),
            )
        found = os.environ[name]
        if "\x00" in found or any("\ud800" <= c <= "\udfff" for c in found):
            raise DeclarationError(
                f"environment variable {name} holds bytes that are not text",
                file=env.path, line=line_of(env.lines, loc), key=key_path(loc),
            )  # fmt: skip
        if not _names_something(loc):
            secrets.remember(found)
        return found

    expanded = _ENV.sub(value, text)
    credentials = _USERINFO.match(expanded)
    if credentials and not _names_something(loc):  # Basic auth sends base64(user:password)
        user, password = (unquote(part) for part in credentials.groups())
        secrets.remember_credentials(user, password)
    return expanded


_USERINFO = re.compile(r"^[A-Za-z][\w+.-]*://([^/@:]*):([^/@]*)@")


def _names_something(loc: Loc) -> bool:
    """The outcome, an approach, the result metric, a metric's connector: names that key the
    history, flow runs and deployments, so a value read into them is shown, not redacted."""
    match loc:
        case ("outcome",) | ("result", "metric") | ("approaches", int(), "name"):
            return True
        case ("metrics", str(), "connector"):
            return True
    return False


def _located_error(
    exc: ValidationError,
    path: Path,
    lines: dict[Loc, int],
    unset: dict[Loc, str] | None = None,
) -> DeclarationError:
    errors = ranked_errors(exc)
    # what is written before what is missing, then in file order: fixing top to bottom works
    errors.sort(key=lambda e: (e[2], line_of(lines, e[0]) or 0))
    loc, message, _ = errors[0]
    names = _unset_names(unset.get(loc, "")) if unset else []
    if names:  # a value left as `${NAME}` because it is not set here: say so, not the symptom
        message = (
            f"{', '.join('${' + n + '}' for n in names)} must be set to check this key "
            f"(it is not a plain string): {message}"
        )
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return DeclarationError(
        secrets.redact(message) + more,
        file=path,
        line=line_of(lines, loc),
        key=key_path(loc) or None,
    )


def _unset_names(template: str) -> list[str]:
    return [m.group(2) for m in _ENV.finditer(template) if not m.group(1)
            and m.group(2) not in os.environ]  # fmt: skip


def env_names(outcome: Outcome) -> list[str]:
    """The `${NAME}` variables the declaration reads, sorted."""
    return sorted({m.group(2) for text in outcome.templates.values()
                   for m in _ENV.finditer(text) if not m.group(1)})  # fmt: skip


# -- Python -----------------------------------------------------------------------------------
def load_python(path: Path) -> list[Outcome]:
    """Import a Python declaration and return the Outcome objects it defines at module level."""
    import importlib.util

    module_name = f"radar_declaration_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise DeclarationError("cannot import this Python declaration", file=path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except ValidationError as exc:
        loc, message, _ = ranked_errors(exc)[0]
        raise DeclarationError(
            message, file=path, line=_traceback_line(exc, path), key=key_path(loc) or None
        ) from None
    except DeclarationError:
        raise
    except Exception as exc:
        raise DeclarationError(
            f"{type(exc).__name__}: {exc}", file=path, line=_traceback_line(exc, path)
        ) from None
    outcomes = [v for v in vars(module).values() if isinstance(v, Outcome)]
    for outcome in outcomes:
        if outcome.source is None:
            outcome.with_source(path)
    return outcomes


def _traceback_line(exc: BaseException, path: Path) -> int | None:
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return frames[-1].lineno if frames else None


# -- finding declarations ---------------------------------------------------------------------
def bundled_flows() -> Path:
    """The example outcomes shipped with radar (inside the wheel, or the source checkout)."""
    here = Path(__file__).resolve().parent.parent
    packaged = here / "_bundled_flows"
    return packaged if packaged.is_dir() else here.parent / "flows"


def search_dirs() -> list[Path]:
    """Where declared outcomes are looked up by name, each directory once."""
    dirs = [Path(p) for p in os.environ.get("RADAR_FLOWS", "").split(os.pathsep) if p]
    seen: dict[Path, Path] = {}
    for directory in [*dirs, Path.cwd() / "flows", Path.cwd(), bundled_flows()]:
        seen.setdefault(directory.resolve(), directory)
    return list(seen.values())


def declaration_files(directory: Path) -> list[Path]:
    """YAML and Python declarations under `directory` (sample data and caches excluded)."""
    found: list[Path] = []
    for path in sorted(directory.rglob("*")):
        if any(
            part.startswith((".", "_")) or part == "data"
            for part in path.relative_to(directory).parts[:-1]
        ):
            continue
        yaml_declaration = path.suffix in YAML_SUFFIXES and _declared_id(path)
        python_declaration = path.suffix == ".py" and "Outcome(" in _text(path)
        if yaml_declaration or (python_declaration and not path.name.startswith("_")):
            found.append(path)
    return found


def _text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


_OUTCOME_KEY = re.compile(r"^outcome:\s*['\"]?([a-z0-9_-]+)", re.MULTILINE)


def _declared_id(path: Path) -> str | None:
    match = _OUTCOME_KEY.search(_text(path))
    return match.group(1) if match else None


def find(name_or_path: str, *, env: str = "require") -> Outcome:
    """Load a declaration given as a file path or as a declared outcome's name.

    By name: a YAML file whose `outcome:` is the name, or a Python file named after it (or in a
    directory named after it). No other Python file is imported to look inside.
    """
    candidate = Path(name_or_path)
    if candidate.suffix in (*YAML_SUFFIXES, ".py") or os.sep in name_or_path:
        return load(candidate, env=env)
    for path in _candidates():
        if path.suffix in YAML_SUFFIXES and _declared_id(path) == name_or_path:
            return load_yaml(path, env=env)
        if path.suffix == ".py" and name_or_path in (path.stem, path.parent.name):
            for outcome in load_python(path):
                if outcome.outcome == name_or_path:
                    return outcome
    looked = ", ".join(str(d) for d in search_dirs() if d.is_dir())
    raise DeclarationError(
        f"no declaration file or declared outcome named {name_or_path!r} (looked in: {looked})"
    )


def _candidates() -> Iterator[Path]:
    """Declaration files in the search directories, in their order (the working directory
    itself only one level deep)."""
    for directory in search_dirs():
        if directory.is_dir():
            cwd = directory.resolve() == Path.cwd().resolve()
            yield from _shallow(directory) if cwd else declaration_files(directory)


def declared_names() -> list[str]:
    """The outcome names of the YAML declarations in the search directories (nothing imported)."""
    return sorted({n for p in _candidates() if (n := _declared_id(p)) is not None})


def declared_outcomes() -> list[tuple[Path, Outcome | None, str | None]]:
    """Every declaration in the search directories, each file once: (file, outcome or None,
    the error that kept it from loading or None). A Python file with several outcomes gives
    one row each; the first declaration of a name wins, as `find` would pick it."""
    rows: list[tuple[Path, Outcome | None, str | None]] = []
    seen_files: set[Path] = set()
    seen_names: set[str] = set()
    for path in _candidates():
        if path.resolve() in seen_files:
            continue
        seen_files.add(path.resolve())
        try:
            found = load_python(path) if path.suffix == ".py" else [load_yaml(path, env="keep")]
        except DeclarationError as exc:
            rows.append((path, None, str(exc)))
            continue
        for outcome in found:
            if outcome.outcome not in seen_names:
                seen_names.add(outcome.outcome)
                rows.append((path, outcome, None))
    return rows


def _shallow(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.suffix in YAML_SUFFIXES and _declared_id(p))
