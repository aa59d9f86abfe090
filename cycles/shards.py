"""Shards: a cadence's outcomes split over N tick deployments. Plain functions, no Prefect.

`radar deploy --shards N` gives every group of outcomes that tick together (one cadence, cron
and timezone) N deployments of the flow `radar-tick`, e.g. `radar-tick/monthly-1of2`. Each owns
the outcomes whose stable hash of their identifier falls in it: the same outcome always lands
in the same shard for a given N, and adding an outcome never moves another. A shard's run ticks
every outcome it owns that has something due (`cycles.tick_flow`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from cycles.declaration.model import Outcome
from cycles.schedule import DEFAULT_CRON, cron_of

TICK_FLOW = "radar-tick"
TICK_ENTRYPOINT = "cycles.tick_flow.radar_tick"
DEFAULT_CONCURRENCY = 4  # outcomes a shard's run ticks at once


def shard_of(outcome: str, shards: int) -> int:
    """The shard (1..shards) owning `outcome`: blake2b of its identifier, mod N. Stable across
    processes, machines and Python versions (unlike `hash()`)."""
    if shards < 1:
        raise ValueError("shards must be at least 1")
    digest = hashlib.blake2b(outcome.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards + 1


@dataclass(frozen=True, order=True)
class Group:
    """Outcomes that tick at the same moments: one cadence, cron and timezone."""

    cadence: str
    cron: str
    timezone: str

    @property
    def label(self) -> str:
        """`monthly` for the cadence's default cron in UTC; else the timezone (and the cron's
        digest when it is not the default) are part of the name: `monthly-europe-amsterdam`."""
        parts = [self.cadence]
        if self.timezone != "UTC" or self.cron != _default_cron(self.cadence):
            parts.append(self.timezone.lower().replace("/", "-").replace("_", "-"))
        if self.cron != _default_cron(self.cadence):
            parts.append("cron-" + hashlib.blake2b(self.cron.encode(), digest_size=4).hexdigest())
        return "-".join(parts)


def _default_cron(cadence: str) -> str:
    return next(cron for c, cron in DEFAULT_CRON.items() if c.value == cadence)


def group_of(outcome: Outcome) -> Group:
    return Group(outcome.cadence.value, cron_of(outcome), outcome.timezone)


@dataclass(frozen=True)
class Shard:
    """One tick deployment: `<group label>-<k>of<N>`, and the outcomes it owns."""

    group: Group
    index: int  # 1..count
    count: int
    outcomes: tuple[Outcome, ...]

    @property
    def name(self) -> str:
        return f"{self.group.label}-{self.index}of{self.count}"


def shards(outcomes: Iterable[Outcome], count: int) -> list[Shard]:
    """Every group's `count` shards (empty ones too, so the set of names depends only on the
    groups and N), in name order. Outcomes whose schedule is inactive tick in no shard."""
    groups: dict[Group, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.schedule.active:
            groups.setdefault(group_of(outcome), []).append(outcome)
    found = []
    for group in sorted(groups):
        members = sorted(groups[group], key=lambda o: o.outcome)
        for k in range(1, count + 1):
            owned = tuple(o for o in members if shard_of(o.outcome, count) == k)
            found.append(Shard(group, k, count, owned))
    return found
