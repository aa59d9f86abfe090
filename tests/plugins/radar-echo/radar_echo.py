"""An example plugin: rows declared inline as a metric source, and an action that 'shouts'."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import pandas as pd

from connectors.actions.base import Action, ActionConfig, ActionContext
from connectors.base import Connector, ConnectorConfig, Window


class EchoConfig(ConnectorConfig):
    type: Literal["echo"] = "echo"
    rows: list[dict[str, Any]]


class EchoConnector(Connector):
    type = "echo"
    Config = EchoConfig
    config: EchoConfig

    def columns(self, query: Any) -> list[str] | None:
        return sorted({k for row in self.config.rows for k in row})

    def fetch(self, query: Any, window: Window, columns: Sequence[str]) -> pd.DataFrame:
        return pd.DataFrame(self.config.rows)[list(columns)]


class ShoutConfig(ActionConfig):
    type: Literal["shout"] = "shout"
    message: str


class ShoutAction(Action):
    type = "shout"
    Config = ShoutConfig
    config: ShoutConfig

    def run(self, context: ActionContext) -> float | None:
        return float(len(self.rendered(context)["message"]))
