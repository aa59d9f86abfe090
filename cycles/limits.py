"""Source protection: a Prefect global concurrency limit per connector that declares one.

`connectors: {crm: {type: sql, url: ..., concurrency: 4}}` gives the global concurrency limit
`radar-connector-crm` of 4 slots. `radar deploy` creates or updates it (the smallest value when
outcomes declaring a connector of that name disagree), and every run under Prefect holds one
slot around each query of that connector, across all processes and workers: a shard's tick
running many outcomes at once never has more than 4 queries in flight at the CRM. The engine
knows nothing of Prefect: it is handed `connector_limit(outcome)` and holds what it returns.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext, suppress
from typing import Any

from cycles.declaration.model import Outcome

PREFIX = "radar-connector-"
LEASE = 300.0  # seconds a slot is leased; Prefect renews it while a query runs longer

_ENSURED: set[str] = set()
_ENSURED_LOCK = threading.Lock()


def limit_name(connector: str) -> str:
    return f"{PREFIX}{connector}"


def declared(outcome: Outcome) -> dict[str, int]:
    """The outcome's connectors that declare `concurrency`, with their value."""
    found = {name: getattr(c, "concurrency", None) for name, c in outcome.connectors.items()}
    return {name: value for name, value in found.items() if value}


def declared_limits(outcomes: Iterable[Outcome]) -> dict[str, int]:
    """Limit name -> slots over many outcomes: the smallest value declared for a connector name
    (the one source it names must be protected by the strictest declaration)."""
    limits: dict[str, int] = {}
    for outcome in outcomes:
        for name, value in declared(outcome).items():
            key = limit_name(name)
            limits[key] = min(value, limits.get(key, value))
    return limits


def connector_limit(outcome: Outcome) -> Any:
    """`limit(connector)` for `run_cycle`: a slot of the connector's global concurrency limit
    while it queries (nothing for connectors without `concurrency`); None when the outcome
    declares no limit at all. A limit missing on the server is created as declared."""
    limits = declared(outcome)
    if not limits:
        return None

    def limit(connector: str) -> AbstractContextManager[Any]:
        if connector not in limits:
            return nullcontext()
        from prefect.concurrency.sync import concurrency

        name = limit_name(connector)
        _ensure(name, limits[connector])
        return concurrency(name, occupy=1, lease_duration=LEASE, strict=True)

    return limit


def _ensure(name: str, slots: int) -> None:
    """Create the limit once per process when the server has none (a run before `radar deploy`)."""
    if name in _ENSURED:
        return
    with _ENSURED_LOCK:
        if name in _ENSURED:
            return
        from prefect import get_client
        from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
        from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

        with get_client(sync_client=True) as client:
            try:
                client.read_global_concurrency_limit_by_name(name)
            except ObjectNotFound:
                with suppress(ObjectAlreadyExists):  # another process created it meanwhile
                    client.create_global_concurrency_limit(
                        GlobalConcurrencyLimitCreate(name=name, limit=slots)
                    )
        _ENSURED.add(name)


def ensure_limits(limits: dict[str, int]) -> None:
    """Create or update each global concurrency limit to its number of slots (`radar deploy`)."""
    from prefect import get_client

    with get_client(sync_client=True) as client:
        for name, slots in sorted(limits.items()):
            client.upsert_global_concurrency_limit_by_name(name, slots)
