"""The action interface: a config model per type and `run(context) -> reach`."""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field


class ActionConfig(BaseModel):
    """Base of every action's config; `name` is unique within its approach."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")
    type: str


@dataclass(frozen=True)
class ActionContext:
    """What an action knows when it runs: the cycle, the approach's parameters, its key."""

    outcome: str
    period: str
    approach: str
    params: dict[str, Any]
    key: str  # <outcome>/<period>/<approach>/<action>: the idempotency key
    base_dir: Path
    extra: dict[str, Any] = field(default_factory=dict)

    def fields(self) -> dict[str, Any]:
        """Placeholder values for `{period}`, `{outcome}`, ... in action strings."""
        action = self.key.rsplit("/", 1)[-1]
        return {
            "period": self.period,
            "outcome": self.outcome,
            "approach": self.approach,
            "action": action,
            "key": self.key,
        }


class Action(ABC):
    """An action sink. `run` returns the reach (how many it reached), or None when unknown."""

    type: ClassVar[str]
    Config: ClassVar[builtins.type[ActionConfig]]
    # True when the sink itself recognises an idempotency key it has seen (an sql action's key
    # table, a file action's .radar-key): repeating an attempt whose outcome is unknown then
    # cannot deliver twice. False: the sink may see it twice (a webhook whose receiver ignores
    # Idempotency-Key, a python callable that ignores context.key).
    exactly_once: ClassVar[bool] = False

    def __init__(self, config: ActionConfig) -> None:
        self.config = config

    @abstractmethod
    def run(self, context: ActionContext) -> float | None:
        """Do it once. Raise ActionError (one clear line) on failure."""

    def check(self, base_dir: Path) -> None:
        """Check the settings without running anything (`radar validate`): ActionError, with
        one line, when the action could not run as declared. Nothing to check by default."""
        return None

    def rendered(self, context: ActionContext) -> dict[str, Any]:
        """The config with `{params.X}`, `{period}`, `{outcome}` filled in."""
        from connectors.actions.template import render

        data = self.config.model_dump(mode="python")
        return render(data, params=context.params, **context.fields())
