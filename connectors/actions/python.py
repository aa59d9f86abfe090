"""`python` actions: a dotted path to a callable that receives the context and returns reach.

Which callables may run: the module named in `callable` must be
- a file in the declaration's project: `module:attr` loads `<declaration dir>/module.py` (a
  dotted module `a.b` loads `a/b.py`), and that file, symlinks resolved, lies under the
  declaration's directory; or
- a module of an installed third-party `radar.actions` plugin (entry-point group
  `radar.actions`), or a submodule of one; radar's own action modules are not callables; or
- a module whose dotted name starts with a prefix the operator lists in `RADAR_PYTHON_ACTIONS`
  (comma-separated, e.g. `pydoc,mycompany.radar`).
The callable itself must be defined in an allowed module too (its `__module__`), so a name a
module merely imported (`actions:os.system`) is refused, and no part of `attr` may be a dunder.
Anything else is refused, by `radar validate` and at run time, before the module is imported.

Any exception the callable raises, `SystemExit` and `KeyboardInterrupt` included, fails the
action with one line (`GeneratorExit` propagates); so does one raised while importing it.

At most once: radar records the attempt before calling and the result after, and never calls
a callable again for a key whose action succeeded. A process that dies while the callable runs
leaves the action unfinished, and a re-run calls it again with the same `context.key`
(`<outcome>/<period>/<approach>/<action>`). A callable that must not act twice keeps that key
with its effect and returns early when it finds it, e.g. sends it as an idempotency key to the
receiving API, writes it in a unique column in the same transaction as its rows, or checks for a
marker named after it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from importlib import import_module
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import Field

from connectors.actions.base import Action, ActionConfig, ActionContext
from cycles.errors import ActionError

ALLOW_ENV = "RADAR_PYTHON_ACTIONS"
_OWN = ("connectors", "cycles")  # radar's own packages: plugins, but never callables


class PythonConfig(ActionConfig):
    type: Literal["python"] = "python"
    callable: str = Field(
        pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$|^[A-Za-z_][\w.]*\.[A-Za-z_]\w*$"
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)


class PythonAction(Action):
    type = "python"
    Config = PythonConfig
    config: PythonConfig

    def check(self, base_dir: Path) -> None:
        _resolve_in(self.config.callable, base_dir)  # imports the module, as a run would

    def run(self, context: ActionContext) -> float | None:
        target = _resolve(self.config.callable, context)
        kwargs = self.rendered(context)["kwargs"]
        try:
            reach = target(context, **kwargs)
        except GeneratorExit:
            raise
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: a failed action too
            raise ActionError(f"{self.config.callable} raised {_describe(exc)}") from exc
        if reach is not None and not isinstance(reach, int | float):
            raise ActionError(f"{self.config.callable} returned {reach!r}, not a number (reach)")
        return None if reach is None else float(reach)


def _describe(exc: BaseException) -> str:
    """`Type: message` on one line."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _resolve(dotted: str, context: ActionContext) -> Any:
    return _resolve_in(dotted, context.base_dir)


def _resolve_in(dotted: str, base_dir: Path) -> Any:
    """The callable at `module:attr` (or `module.attr`); a module beside the declaration wins."""
    module_name, _, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    root = base_dir.resolve()
    beside = root.joinpath(*module_name.split(".")).with_suffix(".py")
    local = beside.resolve() if beside.is_file() else None
    if local is not None and not local.is_relative_to(root):  # a link out of the project
        raise ActionError(f"{beside} leads outside the project: " + _refusal(module_name, root))
    if local is None and not _allowed_name(module_name):
        if not _exists(module_name):
            raise ActionError(
                f"cannot import {dotted}: no module named {module_name!r} (nor {beside})"
            )
        raise ActionError(_refusal(module_name, root))
    if any(part.startswith("__") for part in attr.split(".")):
        raise ActionError(f"{dotted}: dunder attributes are not callables of python actions")
    try:
        obj: Any = _load(local) if local is not None else import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except GeneratorExit:
        raise
    except BaseException as exc:  # a module may raise anything, even SystemExit, on import
        raise ActionError(f"cannot import {dotted}: {_describe(exc)}") from exc
    if not callable(obj):
        raise ActionError(f"{dotted} is not callable")
    defined_in = getattr(obj, "__module__", None)
    if not isinstance(defined_in, str):
        raise ActionError(
            f"{dotted}: cannot tell which module defines it; python actions call functions "
            "and classes defined in an allowed module"
        )
    if not _allowed_module(defined_in, root):
        raise ActionError(f"{dotted} is defined in {defined_in!r}: " + _refusal(defined_in, root))
    return obj


def _refusal(module: str, root: Path) -> str:
    return (
        f"module {module!r} is not allowed in python actions: put it beside the declaration "
        f"(under {root}), install it as a radar.actions plugin, or have the operator allow it "
        f"with {ALLOW_ENV}={module}"
    )


def _exists(name: str) -> bool:
    """Whether the top-level package of `name` is installed (found without running any of it)."""
    try:
        return importlib.util.find_spec(name.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _allowed_name(name: str) -> bool:
    """A plugin's module (or a submodule of one), or a prefix the operator allowed."""
    prefixes = [p.strip() for p in os.environ.get(ALLOW_ENV, "").split(",") if p.strip()]
    prefixes += _plugin_modules()
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _plugin_modules() -> list[str]:
    found = []
    for ep in entry_points(group="radar.actions"):
        module = ep.value.partition(":")[0].strip()
        if module and module.split(".")[0] not in _OWN:
            found.append(module)
    return found


def _allowed_module(name: str, root: Path) -> bool:
    """Where a callable is defined: a project file (loaded by path or by name), else by name."""
    module = sys.modules.get(name)
    file = getattr(module, "__file__", None)
    if isinstance(file, str) and Path(file).resolve().is_relative_to(root):
        return True
    return _allowed_name(name)


def _load(local: Path) -> ModuleType:
    # Load by path under a name unique to the file: two declarations may each have an
    # `actions.py` of their own.
    key = f"radar_actions_{abs(hash(str(local)))}_{local.stat().st_mtime_ns}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, local)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {local}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]
