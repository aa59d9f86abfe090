"""Outcomes that serve other outcomes: `parent: OUTCOME` in a declaration.

A department's outcome (support answers within 4 h) serves the organisation's (customers refer
us). `radar validate` checks that each parent is declared and that no chain of parents comes
back to where it started; the parent's review lists each child's latest decision and standing.

`check_parent`, `children_standing` and `children_reasons` are plain functions; only
`declared_parents` reads the declaration files (as `radar outcomes` finds them).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from cycles.declaration.model import Outcome
from cycles.errors import DeclarationError
from cycles.numbers import Direction, fmt, met, target_sign
from cycles.periods import Period
from cycles.record import ChildStanding, CycleRecord

VOID = "void"


# -- the tree (pure) ------------------------------------------------------------------------------


def check_parent(outcome: Outcome, parents: Mapping[str, str | None]) -> None:
    """DeclarationError (file:line: parent: ...) when `outcome`'s parent is not among the
    declared outcomes (`parents`: each declared outcome's name → its parent), or when following
    the parents comes back to an outcome already passed (a → b → a)."""
    if outcome.parent is None:
        return
    parents = {**parents, outcome.outcome: outcome.parent}  # this declaration, as it is now
    if outcome.parent not in parents:
        known = sorted(parents)
        hint = difflib.get_close_matches(outcome.parent, known, n=1)
        raise _error(
            outcome,
            f"{outcome.parent!r} is not a declared outcome"
            + (f" (did you mean {hint[0]!r}?)" if hint else "")
            + f"; known: {', '.join(known)}",
        )
    chain = [outcome.outcome]
    current: str | None = outcome.parent
    while current is not None:
        if current in chain:
            loop = " → ".join([*chain[chain.index(current) :], current])
            raise _error(outcome, f"the parents form a cycle: {loop}")
        chain.append(current)
        current = parents.get(current)


def _error(outcome: Outcome, message: str) -> DeclarationError:
    return DeclarationError(
        message, file=outcome.source, line=outcome.line_of(("parent",)), key="parent"
    )


def tree_order(parents: Mapping[str, str | None]) -> list[tuple[str, int]]:
    """(outcome, depth) depth-first from the roots, children by name: the portfolio's order.
    An outcome whose parent is unknown is a root; one in a cycle is listed once, at depth 0."""
    children: dict[str | None, list[str]] = {}
    for name, parent in parents.items():
        root = parent is None or parent not in parents
        children.setdefault(None if root else parent, []).append(name)
    out: list[tuple[str, int]] = []
    seen: set[str] = set()

    def walk(name: str, depth: int) -> None:
        if name in seen:
            return
        seen.add(name)
        out.append((name, depth))
        for child in sorted(children.get(name, [])):
            walk(child, depth + 1)

    for name in sorted(children.get(None, [])):
        walk(name, 0)
    for name in sorted(parents):  # in a cycle: no root reaches it
        walk(name, 0)
    return out


# -- the parent's review (pure) -------------------------------------------------------------------


def children_standing(
    children: Mapping[str, Sequence[CycleRecord]], period: Period
) -> list[ChildStanding]:
    """Per child (by name), its latest reviewed cycle whose period began before `period` (the
    parent's) ended: `{outcome, period, decision, value, target, direction}`, all but `outcome`
    None when it has none. A child may run on another cadence, so periods compare by date."""
    entries = []
    for name in sorted(children):
        latest = None
        for cycle in children[name]:
            if cycle.decision is None or cycle.status == VOID:
                continue
            try:
                start = Period.parse(cycle.period, cycle.cadence).start
            except ValueError:
                continue
            if start < period.end and (latest is None or start >= latest[0]):
                latest = (start, cycle)
        record = latest[1] if latest else None
        entries.append(ChildStanding(
            outcome=name,
            period=record.period if record else None,
            decision=record.decision if record else None,
            value=record.result_value if record else None,
            target=record.target if record else None,
            direction=record.direction if record else None,
        ))  # fmt: skip
    return entries


def children_reasons(entries: Iterable[ChildStanding], period: str) -> list[str]:
    """One reason per child: "child support: keep, 0.91 ≥ 0.9", "child leads: adjust, 0.042
    vs ≥ 0.05"; the child's period is named when it is not `period`."""
    reasons = []
    for entry in entries:
        name = entry.outcome
        if entry.decision is None:
            reasons.append(f"child {name}: no review yet")
            continue
        when = f" in {entry.period}" if entry.period != period else ""
        standing = standing_text(entry.value, entry.target, entry.direction)
        reasons.append(f"child {name}: {entry.decision.value}{when}, {standing}")
    return reasons


def standing_text(value: float | None, target: float | None, direction: str | None) -> str:
    """ "0.91 ≥ 0.9" when the target is met, "0.42 vs ≥ 0.5" when not; "no value" without one.
    No direction (an entry older than its field): increase."""
    direction = direction or Direction.increase
    cmp = target_sign(direction)
    if not isinstance(value, int | float):
        return f"no value vs {cmp} {fmt(target)}"
    if not isinstance(target, int | float):
        return fmt(value)
    if met(value, target, direction):
        return f"{fmt(value)} {cmp} {fmt(target)}"
    return f"{fmt(value)} vs {cmp} {fmt(target)}"


# -- reading the declarations ---------------------------------------------------------------------

_PARENT_KEY = re.compile(r"^parent:[ \t]*(.*?)[ \t]*(?:#.*)?$", re.MULTILINE)
_IDENTIFIER = re.compile(r"""^(['"]?)([a-z0-9_-]+)\1$""")


_FIXED: ContextVar[dict[str, str | None] | None] = ContextVar("radar_parents", default=None)


@contextmanager
def declarations_fixed() -> Iterator[None]:
    """Read the declared parents once for the duration: a shard's tick reviews hundreds of
    outcomes, and each review would read every declaration file again (O(n²) for a tick)."""
    token = _FIXED.set(declared_parents())
    try:
        yield
    finally:
        _FIXED.reset(token)


def fix_declarations() -> None:
    """`declarations_fixed()` for the rest of this process: a `radar run-all` worker, which runs
    a chunk of one command's outcomes and exits."""
    _FIXED.set(declared_parents())


def declared_parents() -> dict[str, str | None]:
    """Each declared outcome's name → its parent, where `radar run NAME` looks names up (the
    first declaration of a name wins). YAML is read as text, as `find` reads names; a file is
    only loaded when its `parent:` is not a plain name, and a Python declaration only when its
    text mentions a parent. Inside `declarations_fixed()`, the map read when it began."""
    fixed = _FIXED.get()
    if fixed is not None:
        return dict(fixed)
    from cycles.declaration.loader import (
        YAML_SUFFIXES,
        _candidates,
        _declared_id,
        _text,
        load_python,
        load_yaml,
    )

    found: dict[str, str | None] = {}
    seen: set[Path] = set()
    for path in _candidates():
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        text = _text(path)
        if path.suffix in YAML_SUFFIXES:
            name = _declared_id(path)
            if name is None or name in found:
                continue
            match = _PARENT_KEY.search(text)
            plain = _IDENTIFIER.match(match.group(1)) if match else None
            if match is None or plain is not None:
                found[name] = plain.group(2) if plain else None
                continue
            outcomes = _loaded(lambda p=path: [load_yaml(p)])
        elif "parent" in text:
            outcomes = _loaded(lambda p=path: load_python(p))
        else:
            continue
        for outcome in outcomes:
            found.setdefault(outcome.outcome, outcome.parent)
    return found


def _loaded(load: Any) -> list[Outcome]:
    try:
        return list(load())
    except DeclarationError:
        return []  # `radar validate` reports it; a broken file is no one's child


def declared_children(name: str) -> list[str]:
    """The declared outcomes whose parent is `name`, sorted."""
    return sorted(child for child, parent in declared_parents().items() if parent == name)
