"""CycleRecord: everything one cycle knows; what `radar run --json` prints and the store keeps."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_serializer,
)

from cycles.values import (
    ActionRun,
    ApproachRef,
    CheckResult,
    DecisionKind,
    DriverState,
    Effect,
    Limits,
    PeriodValue,
    SignalKind,
    SignOff,
    Stage,
    StageRun,
)


class CheckSummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passed: int = 0
    failed: int = 0
    results: list[CheckResult] = Field(default_factory=list)

    @classmethod
    def of(cls, results: list[CheckResult]) -> CheckSummary:
        failed = sum(not r.success for r in results)
        return cls(passed=len(results) - failed, failed=failed, results=results)


# -- what a cycle keeps beside its columns: CycleRecord.extra -------------------------------------
#
# The history stores it as JSON in the cycles table's `extra` column and `--json` prints it under
# `extra`, so older rows must still load: every field is optional, a key this version does not
# know is kept as it was, and a known key whose value it cannot read is kept as stored and reads
# as unset. Only the keys a record was given are written back, so a row keeps its shape.


class Kept(BaseModel):
    """A JSON object of a history row: unknown keys kept, and written back with the keys it was
    given only (set to None, a key is still written; never set, it is left out)."""

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        given = self.model_fields_set  # the extra keys are in it too
        return {k: v for k, v in handler(self).items() if k in given}


class SignOffRequest(Kept):
    """When a sign-off was asked for, by which flow run, and until when (ISO times)."""

    at: str = ""
    deadline: str = ""
    decision: str = ""
    flow_run: str = ""


class Proposal(Kept):
    """The decision a cycle awaiting sign-off would take."""

    decision: DecisionKind | None = None
    reasons: list[str] = Field(default_factory=list)
    next_approach: ApproachRef | None = None


class BaselineModel(Kept):
    """A seasonal or trended centre line (policy.seasonality / policy.trend; cycles.baseline)."""

    line: str = ""  # its description
    seasonality: int | None = None
    additive: bool = True
    trend: bool = False
    level: float | None = None
    moving_range: float | None = None
    factors: list[float | None] = Field(default_factory=list)
    centre: dict[str, float | None] = Field(default_factory=dict)  # period → the line there
    notes: list[str] = Field(default_factory=list)


class ChildStanding(Kept):
    """An outcome serving this one (`parent:`): its latest review when this period ended."""

    outcome: str
    period: str | None = None
    decision: DecisionKind | None = None
    value: float | None = None
    target: float | None = None
    direction: str | None = None


class Score(Kept):
    """The RADAR self-score of a reviewed cycle (cycles.score): 0-100 per element and in total."""

    results: int | None = None
    approach: int | None = None
    deployment: int | None = None
    assessment: int | None = None
    total: int | None = None
    band: str = ""
    attributes: dict[str, int] = Field(default_factory=dict)
    evidence: dict[str, str] = Field(default_factory=dict)


class Void(Kept):
    """Why a cycle was set aside (`radar void`), when, and its status before."""

    reason: str = ""
    at: str = ""
    status: str = ""


class RecordExtra(Kept):
    """Everything a cycle keeps beside its columns. The fields are in the order a cycle writes
    them (the JSON keeps it)."""

    campaign: str | None = None  # the campaign the run was for (`radar run --campaign`)
    stage_seconds: dict[str, float] = Field(default_factory=dict)  # stage → seconds it took
    approach_reason: str | None = None  # why this approach runs this period
    pending: str | None = None  # why the review is pending (set by the store)
    baseline_count: int = 0  # baseline periods behind the limits
    baseline_model: BaselineModel | None = None
    approach_start: str | None = None  # the period the current approach started
    drivers: list[DriverState] = Field(default_factory=list)
    proposal: Proposal | None = None  # while awaiting sign-off
    sign_off_requested: SignOffRequest | None = None
    sign_off: SignOff | None = None
    children: list[ChildStanding] = Field(default_factory=list)
    summary: str | None = None  # the decision in a line
    effect: Effect | None = None  # the current approach's effect (cycles.effects)
    score: Score | None = None
    void: Void | None = None  # set by the store (`radar void`)

    # A stored row's values are read (validated) when first asked for: a light read of hundreds
    # of cycles builds no drivers, children or effects that nobody looks at.
    _stored: dict[str, Any] = PrivateAttr(default_factory=dict)  # not read yet
    _unread: dict[str, Any] = PrivateAttr(default_factory=dict)  # this version cannot read them
    _order: tuple[str, ...] = PrivateAttr(default=())  # the row's keys, in its order

    @classmethod
    def stored(cls, data: Mapping[str, Any] | None) -> RecordExtra:
        """`extra` as a history row keeps it (JSON): unknown keys kept, each value read when first
        asked for, and one this version cannot read kept as stored (it reads as unset)."""
        data = data or {}
        found = cls.__new__(cls)  # as model_construct builds one, at a fraction of its cost
        values = {k: v for k, v in _DEFAULTS.items() if k not in data}
        values.update((k, f()) for k, f in _FACTORIES.items() if k not in data)
        object.__setattr__(found, "__dict__", values)  # a stored field comes to __getattr__
        object.__setattr__(found, "__pydantic_fields_set__", set(data))
        object.__setattr__(
            found, "__pydantic_extra__", {k: v for k, v in data.items() if k not in _FIELDS}
        )
        stored = {k: v for k, v in data.items() if k in _FIELDS}
        private = {"_stored": stored, "_unread": {}, "_order": tuple(data)}
        object.__setattr__(found, "__pydantic_private__", private)
        return found

    if not TYPE_CHECKING:  # for the type checker, a name that is not a field stays an error

        def __getattr__(self, name: str) -> Any:
            if name in _FIELDS and name in self.__pydantic_private__["_stored"]:
                return self._read(name)
            return super().__getattr__(name)

    def _read(self, name: str) -> Any:
        private = self.__pydantic_private__
        assert private is not None
        value = private["_stored"][name]
        try:
            read = _adapter(name).validate_python(value)
        except ValidationError:  # kept as stored, written back as it was; reads as unset
            private["_unread"] = {**private["_unread"], name: value}
            read = _DEFAULTS[name] if name in _DEFAULTS else _FACTORIES[name]()
        private["_stored"] = {k: v for k, v in private["_stored"].items() if k != name}
        self.__dict__[name] = read
        return read

    @model_serializer(mode="wrap")
    def _given(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        private = self.__pydantic_private__
        assert private is not None
        kept, order = {**private["_stored"], **private["_unread"]}, private["_order"]
        given = self.model_fields_set - kept.keys()
        typed = {k: v for k, v in handler(self).items() if k in given} if given else {}
        if not kept and not order:
            return typed
        out = {}  # the row's keys in its order, then the ones given since
        for key in order:
            if key in kept:
                out[key] = kept.pop(key)
            elif key in typed:
                out[key] = typed.pop(key)
        return {**out, **typed, **kept}

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RecordExtra):
            return NotImplemented
        return self.model_dump(mode="json") == other.model_dump(mode="json")

    def __setattr__(self, name: str, value: Any) -> None:
        if name not in _FIELDS:
            if not name.startswith("_"):
                raise AttributeError(f"a cycle record's extra has no field {name!r}")
            return super().__setattr__(name, value)
        super().__setattr__(name, value)  # validated: a writer's mistake is an error
        private = self.__pydantic_private__
        assert private is not None
        if name in private["_stored"] or name in private["_unread"]:  # replaced
            for kept in ("_stored", "_unread"):
                private[kept] = {k: v for k, v in private[kept].items() if k != name}

    def discard(self, name: str) -> None:
        """Leave `name` out again, as if never set (it reads as its default)."""
        field = type(self).model_fields[name]
        setattr(self, name, field.get_default(call_default_factory=True))
        self.model_fields_set.discard(name)


_FIELDS = frozenset(RecordExtra.model_fields)
_FACTORIES: dict[str, Callable[[], Any]] = {
    k: f.default_factory  # type: ignore[misc]  # no factory of these takes the data
    for k, f in RecordExtra.model_fields.items()
    if f.default_factory is not None
}
_DEFAULTS = {k: f.default for k, f in RecordExtra.model_fields.items() if k not in _FACTORIES}
_ADAPTERS: dict[str, TypeAdapter[Any]] = {}


def _adapter(name: str) -> TypeAdapter[Any]:
    """The validator of one field of RecordExtra (built when first needed)."""
    if name not in _ADAPTERS:
        annotation = RecordExtra.model_fields[name].annotation
        assert annotation is not None
        _ADAPTERS[name] = TypeAdapter(annotation)
    return _ADAPTERS[name]


class CycleRecord(BaseModel):
    """One outcome's cycle for one period. Mutable while the stages fill it in."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    outcome: str
    period: str
    cadence: str
    title: str = ""
    status: str = "open"  # open | reviewed | failed
    stages: list[Stage] = Field(default_factory=list)  # stages run by this invocation, in order
    completed_stages: list[Stage] = Field(default_factory=list)  # all stages done, over all runs
    stage_runs: list[StageRun] = Field(default_factory=list)
    decision: DecisionKind | None = None
    reasons: list[str] = Field(default_factory=list)
    approach: ApproachRef | None = None
    next_approach: ApproachRef | None = None
    result_metric: str = ""
    result_value: float | None = None
    target: float
    direction: str = "increase"
    standing: float | None = None  # the result metric's last known value when the cycle opened
    checks: CheckSummary = Field(default_factory=CheckSummary)
    limits: Limits | None = None
    signal: SignalKind | None = None
    metrics: dict[str, list[PeriodValue]] = Field(default_factory=dict)
    actions: list[ActionRun] = Field(default_factory=list)
    dry_run: bool = False
    updated_at: datetime | None = None
    extra: RecordExtra = Field(default_factory=RecordExtra)

    @field_validator("extra", mode="before")
    @classmethod
    def _stored_extra(cls, value: Any) -> Any:
        """A dict is `extra` as stored (a history row, older ones too): RecordExtra.stored."""
        return RecordExtra.stored(value) if isinstance(value, Mapping) else value

    def to_json_dict(self) -> dict[str, Any]:
        """The DESIGN.md JSON object (plus a few extra fields)."""
        data = self.model_dump(mode="json")
        if self.limits is not None:
            data["limits"] = {
                "centre": self.limits.centre,
                "lower": self.limits.lower,
                "upper": self.limits.upper,
                "baseline": self.limits.baseline,
            }
        # also at the top, as the JSON under extra has them (a value this version cannot read too)
        kept = data["extra"]
        data["score"] = kept.get("score")  # the RADAR self-score
        # outcomes that serve this one (`parent:`): their latest decisions
        data["children"] = kept.get("children") or []
        # the current approach's effect with its 90 % interval (cycles.effects)
        data["effect"] = kept.get("effect")
        return data
