"""`python` actions: a dotted path to a callable that receives the context and returns reach."""

from __future__ import annotations

from importlib import import_module
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
    module_name, _, attr = dotted.partition(":") if ":" in dotted else dotted.rpartition(".")
    import sys

    base = str(context.base_dir)
    if base not in sys.path:  # callables may live beside the declaration
        sys.path.insert(0, base)
    try:
        obj: Any = import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ActionError(f"cannot import {dotted}: {exc}") from exc
    if not callable(obj):
        raise ActionError(f"{dotted} is not callable")
    return obj
