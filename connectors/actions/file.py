"""`file` actions: write an export (CSV or JSON), e.g. the list of customers to contact."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from connectors.actions.base import Action, ActionConfig, ActionContext
from cycles.errors import ActionError


class FileConfig(ActionConfig):
    type: Literal["file"] = "file"
    path: str  # may use {period}, {outcome}, {params.X}; relative to the declaration
    format: Literal["csv", "json"] | None = None  # default: from the path's suffix
    rows: list[dict[str, Any]] = Field(default_factory=list)  # the records to write
    source: str | None = None  # or a CSV/Parquet file whose rows are exported


class FileAction(Action):
    type = "file"
    Config = FileConfig
    config: FileConfig

    def check(self, base_dir: Path) -> None:
        source = self.config.source
        if source and "{" not in source:
            path = Path(source) if Path(source).is_absolute() else base_dir / source
            if not path.is_file():
                raise ActionError(f"source: file not found: {path}")

    def run(self, context: ActionContext) -> float | None:
        spec = self.rendered(context)
        target = Path(spec["path"]).expanduser()
        if not target.is_absolute():
            target = context.base_dir / target
        rows = spec["rows"] or self._source_rows(spec["source"], context)
        fmt = spec["format"] or ("json" if target.suffix == ".json" else "csv")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(target.suffix + ".tmp")
            if fmt == "json":
                tmp.write_text(json.dumps(rows, indent=2, default=str), encoding="utf-8")
            else:
                _write_csv(tmp, rows)
            tmp.replace(target)  # atomic: a reader never sees half an export
        except OSError as exc:
            raise ActionError(f"cannot write {target}: {exc}") from exc
        return float(len(rows))

    @staticmethod
    def _source_rows(source: str | None, context: ActionContext) -> list[dict[str, Any]]:
        if not source:
            return []
        import pandas as pd

        path = Path(source) if Path(source).is_absolute() else context.base_dir / source
        try:
            frame = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
        except (OSError, ValueError) as exc:
            raise ActionError(f"cannot read {path}: {exc}") from exc
        return frame.to_dict(orient="records")


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    import csv

    columns = list(dict.fromkeys(k for row in rows for k in row))
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
