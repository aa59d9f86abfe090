"""What a declaration says about data: expectations, and mirrors of GX's argument models.

The mirrors carry GX's argument names with strict types, so the expectations of the table
(`cycles.checks.table`) are validated without importing GX; a value GX would coerce is left for
GX to judge.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: Expectations about the table's column names: they need every column, not only named ones.
WHOLE_TABLE = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_be_between",
        "expect_table_column_count_to_equal",
    }
)
#: Expectations about which columns exist: a missing column is their answer, not an error.
PRESENCE = WHOLE_TABLE | {"expect_column_to_exist"}


class ExpectationSpec(BaseModel):
    """One declared expectation: its snake_case GX name and its arguments, as written."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Columns this check reads or names (column, column_A/B, column_list, column_set)."""
        found: list[str] = []
        for key in ("column", "column_A", "column_B", "column_list", "column_set"):
            value = self.kwargs.get(key)
            names = [value] if isinstance(value, str) else value
            if isinstance(names, list | tuple | set | frozenset):
                found.extend(n for n in names if isinstance(n, str) and n not in found)
        return found

    @property
    def reads_every_column(self) -> bool:
        """Whether the check may look at columns it does not name (a condition, a position)."""
        return self.type in WHOLE_TABLE or any(
            self.kwargs.get(key) is not None for key in ("row_condition", "column_index")
        )


class ExpectationSpecError(ValueError):
    """A bad expectation in a declaration; `loc` is the path inside the YAML item."""

    def __init__(self, message: str, loc: tuple[str | int, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.loc = tuple(loc)


def required_columns(specs: Iterable[ExpectationSpec]) -> list[str]:
    """Every column the specs read or name, in first-seen order."""
    found: list[str] = []
    for spec in specs:
        found.extend(c for c in spec.columns if c not in found)
    return found


# --- GX's argument names with strict types: a value GX would coerce is left for GX to judge ---


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Bounds(Args):
    min_value: float | None = None  # GX coerces ints to float too
    max_value: float | None = None
    strict_min: bool = False
    strict_max: bool = False


class _Column(Args):
    column: str = Field(min_length=1)


class MapArgs(_Column):
    mostly: float = Field(default=1.0, ge=0.0, le=1.0)


class BetweenArgs(MapArgs, Bounds):
    @model_validator(mode="after")
    def _a_bound(self) -> BetweenArgs:
        if self.min_value is None and self.max_value is None:
            raise ValueError("min_value and max_value cannot both be None")
        return self


class SetArgs(MapArgs):
    value_set: list[Any]


class RegexArgs(MapArgs):
    regex: str = "(?s).*"


class AggregateArgs(_Column, Bounds):
    pass


class RowCountArgs(Bounds):
    min_value: int | None = None  # GX: an int here
    max_value: int | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RowCountArgs:
        lo, hi = self.min_value, self.max_value
        if lo is not None and hi is not None and lo > hi:
            raise ValueError(f"min_value ({lo}) must be less than or equal to max_value ({hi})")
        return self


class ExistArgs(_Column):
    column_index: int | None = None
