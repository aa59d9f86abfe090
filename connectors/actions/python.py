"""`python` actions: a dotted path to a callable that receives the context and returns reach."""

from __future__ import annotations

import importlib.util
import sys
from importlib import import_module
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

from pydantic import Field

from connectors.actions.base import Action, ActionConfig, ActionContext
from cycles.errors import ActionError


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
        except Exception as exc:
            raise ActionError(f"{self.config.callable} raised {type(exc).__name__}: {exc}") from exc
        if reach is not None and not isinstance(reach, int | float):
            raise ActionError(f"{self.config.callable} returned {reach!r}, not a number (reach)")
        return None if reach is None else float(reach)


def _resolve(dotted: str, context: ActionContext) -> Any:
    return _resolve_in(dotted, context.base_dir)


def _resolve_in(dotted: str, base_dir: Path) -> Any:
    """The callable at `module:attr` (or `module.attr`); a module beside the declaration wins."""
    module_name, _, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    try:
        obj: Any = _module(module_name, base_dir)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError, SyntaxError) as exc:
        raise ActionError(f"cannot import {dotted}: {exc}") from exc
    if not callable(obj):
        raise ActionError(f"{dotted} is not callable")
    return obj


def _module(name: str, base_dir: Path) -> ModuleType:
    local = base_dir.joinpath(*name.split(".")).with_suffix(".py")
    if not local.is_file():
        return import_module(name)
    # Load by path under a name unique to the file: two declarations may each have an
    # `actions.py` of their own.
    key = f"radar_actions_{abs(hash(str(local.resolve())))}_{local.stat().st_mtime_ns}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, local)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot load {local}")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[key] = module
    return sys.modules[key]
