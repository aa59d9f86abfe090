"""Re-decide recorded periods from their recorded metrics (`radar replay`), writing nothing.

The Assessment and Review of the engine, in memory (`assess`, `review`): the same stage
functions (`cycles.stages`) on the metric values the history kept, so a replay under the
declared policy reproduces every recorded decision, and one under another policy shows what it
would have decided. The chain is replayed: a period re-decided differently changes the approach
later periods would have run (and so their baselines), while metric values stay as recorded.

What a replay cannot know is taken as recorded: data checks, the actions of an approach that
ran (a replayed approach that did not run is taken as carried out as planned), a person's
sign-off answer, the standing of the outcomes that serve this one (cycles.hierarchy), and which
reviews had happened when a period opened (from the recorded stage times: a review that ran
after the next period opened did not plan it). `bench/approach_choice.py`
drives the same `assess` and `review` on simulated values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

from pydantic import Field

from cycles import drivers, hierarchy, stages
from cycles.declaration.model import Outcome
from cycles.periods import Period
from cycles.record import CheckSummary, ChildStanding, CycleRecord
from cycles.signoff import SignOff, apply_sign_off, needs_sign_off
from cycles.turn import VOID, event_name, reviewed
from cycles.values import STAGES, ActionRun, ApproachRef, DecisionKind, PeriodValue, Stage, Value

Metrics = Mapping[str, Sequence[PeriodValue]]


# -- the engine's Assessment and Review, in memory ------------------------------------------------


def assess(
    outcome: Outcome,
    period: str,
    approach: ApproachRef,
    metrics: Metrics,
    history: Sequence[CycleRecord],
    *,
    checks: CheckSummary | None = None,
    actions: Sequence[ActionRun] = (),
) -> CycleRecord:
    """The assessed cycle of `period` run with `approach` (engine `_assessment`): `metrics`
    over the assessment window (`window`), baseline limits and drivers from the approach's start."""
    start = stages.approach_start(history, approach.name, Period.parse(period, outcome.cadence))
    record = CycleRecord(
        outcome=outcome.outcome, period=period, cadence=outcome.cadence.value,
        target=outcome.result.target, direction=outcome.result.direction.value,
        result_metric=outcome.result.metric, approach=approach,
        metrics={k: list(v) for k, v in metrics.items()}, checks=checks or CheckSummary(),
        actions=list(actions),
    )  # fmt: skip
    values = record.metrics.get(outcome.result.metric, [])
    record.result_value = values[-1].value if values and values[-1].period == period else None
    at = Period.parse(period, outcome.cadence)
    limits, count, line = stages.baseline_chart(outcome, values, at, start)
    record.limits = limits
    record.extra.baseline_count = count
    if line is not None:  # policy.seasonality / policy.trend: the fitted centre line
        record.extra.baseline_model = line
    record.extra.approach_start = str(start)
    record.extra.drivers = drivers.evaluate(outcome, record.metrics, at, start)
    return record


def window(outcome: Outcome, period: str, start: str) -> list[str]:
    """The periods a cycle reads (engine `Cycle.window`): the baseline before `start`, the
    approach's periods, and `period`."""
    cadence = outcome.cadence
    found = stages.assessment_window(
        outcome, Period.parse(period, cadence), Period.parse(start, cadence)
    )
    return [str(p) for p in found.periods]


def review(
    outcome: Outcome,
    record: CycleRecord,
    history: Sequence[CycleRecord],
    *,
    later: Sequence[CycleRecord] = (),
    sign_off: SignOff | None = None,
    reason: str = "",
    children: Sequence[ChildStanding] = (),
) -> CycleRecord:
    """`record` decided (engine `_review`): the policy, a sign-off answer if one is needed and
    given, the plan already in force in `later` cycles, `reason` first, and the standing of the
    outcomes that serve this one (`children`, as the engine found them) last."""
    decision = stages.review(outcome, record, history, record.extra.baseline_count)
    if needs_sign_off(outcome, decision) and sign_off is not None:
        assert record.approach is not None
        decision = apply_sign_off(outcome, decision, record.approach, sign_off)
    decision = stages.keep_plan_in_force(decision, record, later)
    reasons = [reason, *decision.reasons] if reason else list(decision.reasons)
    if children:
        record.extra.children = list(children)
        reasons += hierarchy.children_reasons(children, record.period)
    record.status = "reviewed"
    record.completed_stages = list(STAGES)
    record.decision = decision.kind
    record.reasons = reasons
    record.next_approach = decision.next_approach
    record.signal = decision.signal
    record.extra.summary = decision.summary
    return record


# -- replaying a history --------------------------------------------------------------------------


class ReplayRow(Value):
    """One recorded period: what was decided then, and what the replay decides."""

    period: str
    recorded: DecisionKind | None
    replayed: DecisionKind | None
    recorded_approach: ApproachRef | None = None
    replayed_approach: ApproachRef | None = None
    recorded_next: ApproachRef | None = None
    replayed_next: ApproachRef | None = None
    recorded_reasons: list[str] = Field(default_factory=list)
    reasons: list[str] = Field(default_factory=list)  # the replayed decision's

    @property
    def differs(self) -> bool:
        return (self.recorded, self.recorded_approach, self.recorded_next) != (
            self.replayed,
            self.replayed_approach,
            self.replayed_next,
        )

    def to_json_dict(self) -> dict[str, object]:
        """`{period, recorded, replayed, reasons}` and the approaches on either side."""
        ref = lambda a: None if a is None else a.model_dump(mode="json")  # noqa: E731
        data: dict[str, object] = {
            "period": self.period,
            "recorded": self.recorded.value if self.recorded else None,
            "replayed": self.replayed.value if self.replayed else None,
            "reasons": self.reasons,
            "differs": self.differs,
            "approach": {"recorded": ref(self.recorded_approach),
                         "replayed": ref(self.replayed_approach)},
            "next_approach": {"recorded": ref(self.recorded_next),
                              "replayed": ref(self.replayed_next)},
        }  # fmt: skip
        if self.differs:
            data["recorded_reasons"] = self.recorded_reasons
        return data


class Replay(Value):
    outcome: str
    rows: list[ReplayRow]
    # approach -> (periods it ran as recorded, periods it would have run), from --from on
    runs: dict[str, tuple[int, int]]

    @property
    def differing(self) -> list[ReplayRow]:
        return [r for r in self.rows if r.differs]


def replay(outcome: Outcome, cycles: Sequence[CycleRecord], *, since: str | None = None) -> Replay:
    """Re-decide every reviewed period of `cycles` (full records, oldest first) from `since` on,
    under `outcome`'s policy; void cycles are skipped, as the engine skips them."""
    kept = [c for c in cycles if c.status != VOID and c.approach is not None]
    void = {c.period for c in cycles if c.status == VOID}
    known = _known_values(kept, void)
    chain: list[CycleRecord] = []  # the replayed cycles so far: what the history would hold
    rows: list[ReplayRow] = []
    runs: dict[str, list[int]] = {}
    for cycle in kept:
        if since is not None and cycle.period < since:
            chain.append(cycle)
            continue
        approach = _opened_with(outcome, cycle, chain)
        assert cycle.approach is not None
        runs.setdefault(cycle.approach.name, [0, 0])[0] += 1
        runs.setdefault(approach.name, [0, 0])[1] += 1
        if not reviewed(cycle):  # opened, not decided: it runs the replayed approach
            chain.append(cycle.model_copy(update={"approach": approach}))
            continue
        record = _reassess(outcome, cycle, approach, chain, known, void)
        later = [
            c.model_copy(update={"approach": _opened_with(outcome, c, chain)})
            for c in kept
            if c.period > cycle.period and _earlier(_opened_at(c), _reviewed_at(cycle))
        ]
        decided = review(
            outcome, record, chain, later=later, sign_off=cycle.extra.sign_off,
            reason=_lead_reason(outcome, cycle), children=cycle.extra.children,
        )  # fmt: skip
        decided.stage_runs = list(cycle.stage_runs)  # its times say which reviews came first
        chain.append(decided)
        rows.append(
            ReplayRow(
                period=cycle.period, recorded=cycle.decision, replayed=decided.decision,
                recorded_approach=cycle.approach, replayed_approach=approach,
                recorded_next=cycle.next_approach, replayed_next=decided.next_approach,
                recorded_reasons=list(cycle.reasons), reasons=list(decided.reasons),
            )
        )  # fmt: skip
    return Replay(
        outcome=outcome.outcome, rows=rows, runs={k: (v[0], v[1]) for k, v in runs.items()}
    )


def _reassess(
    outcome: Outcome,
    cycle: CycleRecord,
    approach: ApproachRef,
    chain: Sequence[CycleRecord],
    known: dict[str, dict[str, PeriodValue]],
    void: set[str],
) -> CycleRecord:
    """The cycle assessed again with the replayed approach: its own metric values when it reads
    the same window, else that window from every recorded value."""
    start = stages.approach_start(chain, approach.name, Period.parse(cycle.period, outcome.cadence))
    periods = window(outcome, cycle.period, str(start))
    own = cycle.metrics.get(outcome.result.metric, [])
    same = [v.period for v in own] == [p for p in periods if p not in void - {cycle.period}]
    metrics: dict[str, list[PeriodValue]] = {}
    for name in outcome.metrics:
        if same and name in cycle.metrics:
            metrics[name] = list(cycle.metrics[name])
            continue
        mine = {v.period: v for v in cycle.metrics.get(name, [])}
        metrics[name] = [
            mine.get(p) or known.get(name, {}).get(p) or PeriodValue(period=p, value=None)
            for p in periods
            if p not in void or p == cycle.period
        ]
    assert cycle.approach is not None
    ran = cycle.approach.name == approach.name
    return assess(
        outcome, cycle.period, approach, metrics, chain, checks=cycle.checks,
        actions=cycle.actions if ran else (),
    )  # fmt: skip


def _known_values(
    cycles: Sequence[CycleRecord], void: set[str]
) -> dict[str, dict[str, PeriodValue]]:
    """Every recorded value per metric and period: a period's own cycle first, else the latest
    cycle that read it."""
    known: dict[str, dict[str, PeriodValue]] = {}
    for cycle in cycles:
        for name, values in cycle.metrics.items():
            known.setdefault(name, {}).update({v.period: v for v in values if v.period not in void})
    for cycle in cycles:
        for name, values in cycle.metrics.items():
            own = next((v for v in values if v.period == cycle.period), None)
            if own is not None:
                known[name][cycle.period] = own
    return known


def _opened_with(outcome: Outcome, cycle: CycleRecord, chain: Sequence[CycleRecord]) -> ApproachRef:
    """The approach `cycle` would have opened with: the plan of the replayed reviews that had
    happened when it opened (engine `Cycle.planned`), in the form the history keeps."""
    opened = _opened_at(cycle)
    visible = [
        c if _before(_reviewed_at(c), opened) else _unreviewed(c)
        for c in chain
        if c.period < cycle.period
    ]
    approach, _ = stages.choose_approach(outcome, visible)
    masked = getattr(stages, "masked", None)  # secret parameters as the history keeps them
    return masked(outcome, approach) if masked is not None else approach


def _unreviewed(cycle: CycleRecord) -> CycleRecord:
    return cycle.model_copy(
        update={
            "decision": None, "next_approach": None, "status": "open",
            "completed_stages": [s for s in cycle.completed_stages if s is not Stage.review],
        }
    )  # fmt: skip


def _opened_at(cycle: CycleRecord) -> datetime | None:
    return next(
        (r.finished_at for r in cycle.stage_runs
         if r.stage is Stage.approach and r.status == "completed"),
        None,
    )  # fmt: skip


def _reviewed_at(cycle: CycleRecord) -> datetime | None:
    done = [r.finished_at for r in cycle.stage_runs
            if r.stage is Stage.review and r.status == "completed"]  # fmt: skip
    return done[-1] if done else None


def _before(first: datetime | None, then: datetime | None) -> bool:
    """`first` happened before `then`; without both times, the order of the periods decides."""
    return first is None or then is None or first <= then


def _earlier(first: datetime | None, then: datetime | None) -> bool:
    """`first` certainly happened before `then` (a later period opened before this review)."""
    return first is not None and then is not None and first < then


def _lead_reason(outcome: Outcome, cycle: CycleRecord) -> str:
    """The reason the engine put first (a review at its deadline), kept for the replay."""
    first = cycle.reasons[0] if cycle.reasons else ""
    return first if first.startswith(f"no {event_name(outcome)} event by ") else ""


def override_policy(outcome: Outcome, policy: Mapping[str, object]) -> Outcome:
    """`outcome` with the keys of a `policy:` mapping replacing the declared ones."""
    from cycles.declaration.model import PolicySpec

    merged = {**outcome.policy.model_dump(), **policy}
    spec = PolicySpec.model_validate(merged)
    return outcome.model_copy(update={"policy": spec})


def load_policy(outcome: Outcome, path: Path) -> Outcome:
    """`outcome` under the policy of a YAML file: a `policy:` mapping as in a declaration (or
    the mapping alone); a mistake is a DeclarationError naming the file, the line and the key."""
    from pydantic import ValidationError

    from cycles.declaration.errors import first_error, key_path
    from cycles.declaration.loader import read_yaml
    from cycles.errors import DeclarationError

    data, lines = read_yaml(path)
    nested = isinstance(data, dict) and "policy" in data
    policy = data.get("policy") if nested else data
    if not isinstance(policy, dict):
        raise DeclarationError("expected a policy: mapping (sustain, max_adjustments, choice, ...)",
                               file=path, line=1)  # fmt: skip
    try:
        return override_policy(outcome, policy)
    except ValidationError as exc:
        loc, message = first_error(exc)
        full = ("policy", *loc) if nested else tuple(loc)
        line = next((lines[full[:n]] for n in range(len(full), -1, -1) if full[:n] in lines), None)
        raise DeclarationError(
            message, file=path, line=line, key=key_path(("policy", *loc))
        ) from None


# -- how a replay reads --------------------------------------------------------------------------


def render(result: Replay, *, under: str) -> list[str]:
    """The lines `radar replay` prints (rich markup): per period the recorded and the replayed
    decision, the reasons where they differ, and a summary."""
    from cycles.console import DECISION_STYLE, approach_text, escape

    def side(kind: DecisionKind | None, nxt: ApproachRef | None) -> str:
        word = kind.value if kind else "-"
        style = DECISION_STYLE.get(word, "dim")
        return f"[{style}]{word:<8}[/] → {escape(approach_text(nxt))}"

    lines = [f"replay of {escape(result.outcome)} under {escape(under)}: nothing is written", ""]
    width = max([len(approach_text(r.recorded_next)) for r in result.rows] + [20]) + 11
    lines.append(f"[bold]{'period':<8} {'recorded':<{width}} replayed[/]")
    for row in result.rows:
        recorded = side(row.recorded, row.recorded_next)
        pad = " " * max(0, width - 11 - len(approach_text(row.recorded_next)))
        if not row.differs:
            lines.append(f"{row.period:<8} {recorded}{pad} [dim]same[/]")
            continue
        lines.append(f"{row.period:<8} {recorded}{pad} {side(row.replayed, row.replayed_next)}")
        if row.recorded_approach != row.replayed_approach:
            lines.append(
                f"{'':<8}   ran {escape(approach_text(row.recorded_approach))}; would have run "
                f"{escape(approach_text(row.replayed_approach))}"
            )
        elsewhere = (row.recorded_next.name if row.recorded_next else None) != (
            row.replayed_next.name if row.replayed_next else None
        )
        if row.recorded == row.replayed and not (row.replayed is DecisionKind.switch and elsewhere):
            continue  # the same decision, for another approach: its reasons say the same
        for reason in [r for r in row.recorded_reasons if r not in row.reasons]:
            lines.append(f"{'':<8}   [dim]recorded:[/] {escape(reason)}")
        for reason in [r for r in row.reasons if r not in row.recorded_reasons]:
            lines.append(f"{'':<8}   [dim]replayed:[/] {escape(reason)}")
    runs = "; ".join(
        f"{escape(name)} {was} → {would} period{'' if would == 1 else 's'}"
        for name, (was, would) in result.runs.items()
    )
    count = len(result.rows)
    lines += [
        "",
        f"{len(result.differing)} of {count} reviewed period{'' if count == 1 else 's'} differ; "
        f"periods each approach ran (recorded → replayed): {runs or 'none'}",
    ]
    return lines
