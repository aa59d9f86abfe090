"""The declaration of an outcome (DESIGN.md): the pydantic model both YAML and Python build."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from connectors.actions.base import ActionConfig
from connectors.actions.template import FIELDS, PLACEHOLDER, render
from connectors.base import ConnectorConfig
from connectors.registry import UnknownType, action_class, connector_class
from cycles.checks import ExpectationSpec, ExpectationSpecError, parse_expectation
from cycles.choice import Choice
from cycles.declaration.errors import Loc, first_error, line_of, located
from cycles.numbers import Direction
from cycles.periods import Cadence
from cycles.signals import RuleSet
from cycles.values import DecisionKind

MAX_NAME = 200  # outcome, metric, approach and action names: what every history store keeps


class Strict(BaseModel):
    # a declared number is finite: `.nan` or `.inf` as a target or a step is a declaration error
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DriverSpec(Strict):
    """A metric that drives its parent (the result or another driver), with its own target.

    `deployment: true` marks a driver that measures whether the approach was carried out (asks
    sent, customers reached): far below its target, the review holds instead of judging.
    """

    metric: str
    target: float
    direction: Direction = Direction.increase
    deployment: bool = False
    drivers: list[DriverSpec] = Field(default_factory=list)


class ResultSpec(Strict):
    metric: str
    target: float
    direction: Direction = Direction.increase
    drivers: list[DriverSpec] = Field(default_factory=list)

    def driver_nodes(self) -> list[tuple[Loc, DriverSpec, str | None, int]]:
        """(key path, driver, parent metric or None, depth) of every driver, depth-first."""
        out: list[tuple[Loc, DriverSpec, str | None, int]] = []

        def walk(drivers: list[DriverSpec], loc: Loc, parent: str | None, depth: int) -> None:
            for i, driver in enumerate(drivers):
                here = (*loc, "drivers", i)
                out.append((here, driver, parent, depth))
                walk(driver.drivers, here, driver.metric, depth + 1)

        walk(self.drivers, ("result",), None, 1)
        return out


class MetricSpec(Strict):
    """Where a metric's rows come from and how a period's value is computed from them."""

    connector: str
    query: dict[str, Any] = Field(default_factory=dict)
    period: str
    value: str | None = None
    numerator: str | None = None
    denominator: str | None = None

    @model_validator(mode="after")
    def _value_or_proportion(self) -> MetricSpec:
        proportion = self.numerator is not None or self.denominator is not None
        if self.value is not None and proportion:
            raise located(("value",), "give either value or numerator/denominator, not both")
        if self.value is None and not proportion:
            raise located((), "give value, or numerator and denominator")
        if proportion and (self.numerator is None or self.denominator is None):
            key = "denominator" if self.denominator is None else "numerator"
            raise located((key,), "a proportion needs both numerator and denominator")
        return self

    @property
    def is_proportion(self) -> bool:
        return self.value is None

    @property
    def value_columns(self) -> list[str]:
        return [c for c in (self.value, self.numerator, self.denominator) if c is not None]

    def column_keys(self) -> list[tuple[str, str]]:
        """(key, column) pairs this metric names, for error messages."""
        pairs = [("period", self.period)]
        for key in ("value", "numerator", "denominator"):
            column = getattr(self, key)
            if column is not None:
                pairs.append((key, column))
        return pairs


class AdjustSpec(Strict):
    """How `adjust` moves a numeric parameter: one `step` toward its `max` (or `min`)."""

    step: float = Field(gt=0)
    max: float | None = None
    min: float | None = None

    @model_validator(mode="after")
    def _one_bound(self) -> AdjustSpec:
        if (self.max is None) == (self.min is None):
            raise located((), "give exactly one bound, max or min, to step toward")
        return self

    def next_value(self, current: float) -> float:
        """One step toward the bound, never past it."""
        if self.max is not None:
            return min(current + self.step, self.max)
        assert self.min is not None
        return max(current - self.step, self.min)

    def at_bound(self, current: float) -> bool:
        return current >= self.max if self.max is not None else current <= (self.min or 0.0)


def _connector_config(value: Any) -> Any:
    return _plugin_config(value, connector_class, "connector")


def _action_config(value: Any) -> Any:
    return _plugin_config(value, action_class, "action")


def _plugin_config(value: Any, lookup: Any, kind: str) -> Any:
    """Validate a plugin's config with the model its `type` registers."""
    if isinstance(value, BaseModel):
        return value
    if not isinstance(value, dict):
        raise located((), f"expected a mapping for the {kind}")
    if "type" not in value:
        raise located(("type",), "required key is missing")
    try:
        cls = lookup(str(value["type"]))
    except UnknownType as exc:
        raise located(("type",), str(exc)) from None
    try:
        return cls.Config.model_validate(value)
    except ValidationError as exc:
        loc, message = first_error(exc)
        raise located(loc, message) from None


def _expectation(value: Any) -> ExpectationSpec:
    try:
        return parse_expectation(value)
    except ExpectationSpecError as exc:
        raise located(exc.loc, str(exc)) from None


ConnectorEntry = Annotated[SerializeAsAny[ConnectorConfig], BeforeValidator(_connector_config)]
ActionEntry = Annotated[SerializeAsAny[ActionConfig], BeforeValidator(_action_config)]
Expectation = Annotated[ExpectationSpec, BeforeValidator(_expectation)]


class ApproachSpec(Strict):
    """What we try: named, with parameters, how to adjust them, and the actions that deploy it."""

    name: str = Field(min_length=1, max_length=MAX_NAME)
    rationale: str | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    adjust: dict[str, AdjustSpec] = Field(default_factory=dict)
    actions: list[ActionEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> ApproachSpec:
        for loc, number in _numbers(self.params, ("params",)):
            if isinstance(number, float) and not math.isfinite(number):
                raise located(loc, f"{number!r} is not a finite number")  # JSON has no nan
        for name in self.adjust:
            if name not in self.params:
                raise located(("adjust", name), f"{name!r} is not a key of params")
            if isinstance(self.params[name], bool) or not isinstance(
                self.params[name], int | float
            ):
                raise located(("params", name), "an adjustable parameter must be a number")
            if not _float_sized(self.params[name]):
                raise located(("params", name), "an adjustable parameter must be below 1e308")
        seen: set[str] = set()
        for i, action in enumerate(self.actions):
            action_name = action.name
            if action_name in seen:
                raise located(("actions", i, "name"), f"duplicate action name {action_name!r}")
            seen.add(action_name)
            for key, text in _strings(action.model_dump(mode="python")):
                self._check_placeholders(("actions", i, *key), text)
        return self

    def _check_placeholders(self, loc: Loc, text: str) -> None:
        for field in PLACEHOLDER.findall(text):
            if field in FIELDS:
                continue
            if field.startswith("params.") and field[len("params.") :] in self.params:
                continue
            raise located(loc, f"unknown placeholder {{{field}}} (params: {sorted(self.params)})")


def _numbers(data: Any, loc: Loc) -> list[tuple[Loc, float]]:
    """Every number in params (nested too), with its key path."""
    if isinstance(data, float | int) and not isinstance(data, bool):
        return [(loc, data)]
    if isinstance(data, dict):
        return [item for k, v in data.items() for item in _numbers(v, (*loc, k))]
    if isinstance(data, list):
        return [item for i, v in enumerate(data) for item in _numbers(v, (*loc, i))]
    return []


def _float_sized(number: float) -> bool:
    """Whether float arithmetic can step the number (an int may be too large for a float)."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


def _strings(data: Any, loc: Loc = ()) -> list[tuple[Loc, str]]:
    if isinstance(data, str):
        return [(loc, data)]
    if isinstance(data, dict):
        return [item for k, v in data.items() for item in _strings(v, (*loc, k))]
    if isinstance(data, list):
        return [item for i, v in enumerate(data) for item in _strings(v, (*loc, i))]
    return []


class PolicySpec(Strict):
    # Upper bounds keep the window a cycle reads sane: every period of it is fetched and labelled.
    sustain: int = Field(default=3, ge=1, le=60)  # 5 years of months
    baseline_periods: int = Field(default=12, ge=1, le=260)  # 5 years of weeks, 65 of quarters
    max_adjustments: int = Field(default=3, ge=1, le=100)
    # a deployment driver short of this share of its target is a deployment gap (hold)
    deployment_gap: float = Field(default=0.5, gt=0, le=1)
    sign_off: list[DecisionKind] = Field(default_factory=list)  # decisions a person approves
    sign_off_timeout: timedelta = timedelta(days=7)  # no answer by then: hold
    # improvement/deterioration signals: rules, beta-binomial (README "Signals")
    signals: RuleSet = Field(default_factory=RuleSet)
    # the centre line: seasonal factors (a season length, or auto), a trend (README "Seasonal
    # and trended baselines"); seasonal factors need two seasons of baseline
    seasonality: int | Literal["auto"] | None = None
    trend: bool = False
    # once every approach was tried, a switch draws on evidence, or holds (`order`)
    choice: Choice = Choice.evidence

    @field_validator("sign_off_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("sign_off_timeout must be a positive duration, e.g. P7D")
        return value

    @field_validator("seasonality", mode="before")
    @classmethod
    def _season(cls, value: Any) -> Any:
        if value is None or value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int) or not 2 <= value <= 52:
            raise located(
                (),
                f"seasonality must be a season length in periods from 2 to 52 (12 for months, 4 "
                f"for quarters) or auto, not {value!r}",
            )
        return value

    @model_validator(mode="after")
    def _two_seasons(self) -> PolicySpec:
        season = self.seasonality
        if isinstance(season, int) and self.baseline_periods < 2 * season:
            raise located(
                ("seasonality",),
                f"seasonality {season} needs baseline_periods of at least {2 * season} (two "
                f"seasons of baseline), not {self.baseline_periods}",
            )
        return self


class ReviewSpec(Strict):
    """When a period's review runs (DESIGN.md "The scheduled tick").

    Without `after_event`, the tick at the start of the next period reviews it, `delay` after
    the period ended. With it, the review waits for that Prefect event plus `delay`, and runs
    anyway `deadline` after the period ended (default: `delay` plus one period).
    """

    after_event: str | None = None  # e.g. campaign.ended
    delay: timedelta = timedelta(0)  # attribution window / late rows (ISO 8601)
    deadline: timedelta | None = None  # review anyway this long after the period ended

    @field_validator("delay")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("delay must not be negative, e.g. P14D")
        return value

    @field_validator("deadline")
    @classmethod
    def _positive_deadline(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("deadline must be a positive duration, e.g. P45D")
        return value

    @model_validator(mode="after")
    def _deadline_needs_event(self) -> ReviewSpec:
        if self.deadline is not None and self.after_event is None:
            raise located(
                ("deadline",),
                "a deadline needs after_event: without an event the "
                "tick reviews the period (after delay)",
            )
        if self.deadline is not None and self.deadline < self.delay:
            raise located(("deadline",), "the deadline comes before the delay is over")
        return self


CRON = re.compile(r"^\S+(\s+\S+){4}$")


class ScheduleSpec(Strict):
    """When the Prefect deployment's tick runs: review what ended, open the new period."""

    cron: str | None = None  # default: 06:00 on each period's first day (see cycles.schedule)
    active: bool = True

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None and not CRON.match(value.strip()):
            raise ValueError(f"{value!r} is not a cron expression of five fields")
        return value


OUTCOME_ID = re.compile(r"^[a-z0-9_-]+$")


def _unstorable(data: Any, loc: Loc = ()) -> tuple[Loc, str] | None:
    """The first string no history store can keep as text (a NUL, a lone surrogate)."""
    if isinstance(data, str):
        if "\x00" in data:
            return loc, "a NUL character (\\0) is not allowed"
        if any("\ud800" <= c <= "\udfff" for c in data):
            return loc, "a lone surrogate (\\ud800-\\udfff) is not text"
        return None
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list | tuple)
        else ()
    )
    for key, value in items:
        found = _unstorable(key, loc) if isinstance(key, str) else None
        found = found or _unstorable(value, (*loc, key))
        if found:
            return found
    return None


class Outcome(Strict):
    """A declared outcome: the tangible result, its metrics and sources, checks and approaches."""

    outcome: str
    title: str
    cadence: Cadence
    timezone: str = "UTC"
    parent: str | None = None  # the outcome this one serves (`radar validate` checks it exists)
    result: ResultSpec
    metrics: dict[str, MetricSpec] = Field(min_length=1)
    connectors: dict[str, ConnectorEntry] = Field(default_factory=dict)
    checks: dict[str, list[Expectation]] = Field(default_factory=dict)
    approaches: list[ApproachSpec] = Field(min_length=1)
    policy: PolicySpec = Field(default_factory=PolicySpec)
    review: ReviewSpec | None = None
    schedule: ScheduleSpec = Field(default_factory=ScheduleSpec)

    _source: Path | None = PrivateAttr(default=None)
    _lines: dict[Loc, int] = PrivateAttr(default_factory=dict)
    _templates: dict[Loc, str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        found = _unstorable(data)
        if found:
            raise located(*found)
        return data

    @field_validator("outcome")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not OUTCOME_ID.match(value):
            raise ValueError("an outcome identifier uses only a-z, 0-9, '_' and '-'")
        if len(value) > MAX_NAME:
            raise ValueError(f"an outcome identifier has at most {MAX_NAME} characters")
        return value

    @field_validator("parent")
    @classmethod
    def _parent_identifier(cls, value: str | None) -> str | None:
        if value is not None and not OUTCOME_ID.match(value):
            raise located((), f"{value!r} is not an outcome identifier (a-z, 0-9, '_' and '-')")
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {value!r}") from None
        return value

    @model_validator(mode="after")
    def _references(self) -> Outcome:
        if self.parent == self.outcome:
            raise located(("parent",), f"{self.outcome!r} cannot serve itself")
        for name in self.metrics:
            if len(name) > MAX_NAME:
                raise located(("metrics", name), f"a metric name has at most {MAX_NAME} characters")
        if self.result.metric not in self.metrics:
            raise located(
                ("result", "metric"), _not_a_key(self.result.metric, "metrics", self.metrics)
            )
        self._check_drivers()
        for name, metric in self.metrics.items():
            if metric.connector not in self.connectors:
                raise located(
                    ("metrics", name, "connector"),
                    _not_a_key(metric.connector, "connectors", self.connectors),
                )
            query_model = connector_class(self.connectors[metric.connector].type).Query
            try:
                query_model.model_validate(metric.query)
            except ValidationError as exc:
                loc, message = first_error(exc)
                raise located(("metrics", name, "query", *loc), message) from None
        for name in self.checks:
            if name not in self.metrics:
                raise located(("checks", name), _not_a_key(name, "metrics", self.metrics))
        names = [a.name for a in self.approaches]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise located(("approaches", i, "name"), f"duplicate approach name {name!r}")
        return self

    def _check_drivers(self) -> None:
        """Each driver names a metric, once in the tree, and not the result metric itself."""
        from cycles.declaration.errors import key_path

        seen: dict[str, Loc] = {}
        for loc, driver, _, _ in self.result.driver_nodes():
            name = driver.metric
            if name not in self.metrics:
                raise located((*loc, "metric"), _not_a_key(name, "metrics", self.metrics))
            if name == self.result.metric:
                raise located((*loc, "metric"), f"{name!r} is the result metric, not a driver")
            if name in seen:
                raise located(
                    (*loc, "metric"), f"{name!r} is already a driver at {key_path(seen[name])}"
                )
            seen[name] = loc

    # -- where things are ---------------------------------------------------------------------
    @property
    def source(self) -> Path | None:
        """The file this outcome was declared in (YAML or Python)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Relative paths in the declaration resolve against its file's directory."""
        return self._source.parent if self._source else Path.cwd()

    def line_of(self, loc: Loc) -> int | None:
        """The line of the nearest declared key on `loc` (None for the Python form)."""
        return line_of(self._lines, loc)

    def with_source(
        self,
        source: Path,
        lines: dict[Loc, int] | None = None,
        templates: dict[Loc, str] | None = None,
    ) -> Outcome:
        self._source = source.resolve()
        self._lines = dict(lines or {})
        self._templates = dict(templates or {})
        return self

    @property
    def templates(self) -> dict[Loc, str]:
        """Keys whose text reads `${NAME}`, as written (before the environment filled it in)."""
        return self._templates

    def secret_params(self, approach: str) -> set[str]:
        """The parameters of `approach` whose value is read from the environment (`${NAME}`):
        kept out of the history by their key, whatever their value."""
        index = next((i for i, a in enumerate(self.approaches) if a.name == approach), None)
        return {
            str(loc[3])
            for loc in self._templates
            if len(loc) >= 4 and loc[:3] == ("approaches", index, "params")
        }

    def as_written(self, loc: Loc, value: str) -> str:
        """`value` of the key at `loc`, or its text as written when it reads `${NAME}`: what may
        be shown outside radar (a deployment's description) without a secret."""
        return self._templates.get(loc, value)

    # -- conveniences -------------------------------------------------------------------------
    def approach(self, name: str) -> ApproachSpec | None:
        return next((a for a in self.approaches if a.name == name), None)

    @property
    def result_metric(self) -> MetricSpec:
        return self.metrics[self.result.metric]


def _not_a_key(name: str, section: str, known: dict[str, Any]) -> str:
    import difflib

    hint = difflib.get_close_matches(name, list(known), n=1)
    suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
    listing = ", ".join(known) or "none declared"
    return f"{name!r} is not a key of {section}{suggestion}; known: {listing}"


__all__ = [
    "AdjustSpec",
    "ApproachSpec",
    "Direction",
    "DriverSpec",
    "MetricSpec",
    "Outcome",
    "PolicySpec",
    "ResultSpec",
    "ReviewSpec",
    "render",
]
