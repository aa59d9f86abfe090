"""Many outcomes' cycles at once: a bounded pool of worker processes, results as they end.

Workers load declarations by path, keep one history `Store` each and call the same `run_cycle`
as `radar run` (its run lock keeps two runs of one outcome's period apart). Each pool of
`workers` processes runs `workers * recycle` cycles and is replaced by a fresh one, forked from a
preloaded server, so memory stays flat however many outcomes there are. (Python 3.11's
`ProcessPoolExecutor(max_tasks_per_child=...)` hangs once a worker retires, hence the pools.)
No Prefect here: a flow run costs about a second of waiting on the API, the cycle a fifth of it.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import resource
import signal
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cycles.declaration.model import Outcome
from cycles.errors import DeclarationError, RadarError, error_text
from cycles.record import CycleRecord
from cycles.secrets import redact

RECYCLE = 100  # cycles per worker process, on average, before its pool is replaced
PRELOAD = ["cycles.batch", "cycles.engine", "cycles.store.store", "cycles.declaration.loader",
           "connectors.files", "connectors.sql", "pandas", "ruamel.yaml"]  # fmt: skip
Item = tuple[str, str | None]  # a declaration file; the outcome to pick from a Python file


@dataclass(frozen=True)
class BatchResult:
    """How one outcome's cycle went; `record` is the cycle (secrets redacted), None on failure."""

    source: str  # the declaration file
    outcome: str  # its identifier (the file's stem when it could not be loaded)
    period: str | None  # None when the declaration or the period was not understood
    decision: str | None = None  # None when not reviewed (yet) or failed
    seconds: float = 0.0  # wall time in the worker: loading, preflight and the cycle
    error: str | None = None  # one line
    exit_code: int = 0  # as `radar run` would exit: 2 bad declaration or period, 1 other failure
    record: CycleRecord | None = field(default=None, repr=False)
    worker: int = 0  # the worker's pid (0: not run)
    cpu_seconds: float = 0.0  # CPU time the worker spent on it
    peak_mb: float = 0.0  # the worker's peak resident memory so far

    @property
    def ok(self) -> bool:
        return self.error is None


def default_workers() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def run_many(
    declarations: Iterable[str | Path | Outcome],
    period: str | None = None,
    *,
    workers: int,
    store_url: str | None = None,
    review: bool = False,
    dry_run: bool = False,
    recycle: int = RECYCLE,
) -> Iterator[BatchResult]:
    """One cycle per declared outcome (files, directories of them, or loaded Outcomes).

    Yields each result as its cycle ends. A failing outcome is a result with an `error`; it
    never stops the others. The same file given twice runs once; a second file declaring an
    outcome already given is a failed result, not run. `period` None: each outcome's current one.
    The cycles a dying worker process takes down with its pool run again, each alone.
    Like any process pool's, workers import the calling script again (as `__mp_main__`): keep
    a script's own work under `if __name__ == "__main__":`.
    """
    from cycles.store import Store, default_url

    if workers < 1 or recycle < 1:
        raise ValueError("workers and recycle must be at least 1")
    todo, twice = _plan(declarations)
    yield from twice
    url = store_url or default_url()
    Store(url).dispose()  # create or migrate the history once, before workers share it
    job = functools.partial(_run_one, period=period, review=review, dry_run=dry_run)
    setup = (url, dict(os.environ), str(Path.cwd()))
    for start in range(0, len(todo), workers * recycle):
        chunk = todo[start : start + workers * recycle]
        broken: list[Item] = []
        yield from _pool(chunk, min(workers, len(chunk)), job, setup, broken)
        for item in broken:  # a worker died and took its pool's unfinished cycles: each again
            yield from _pool([item], 1, job, setup, None)  # alone, so only the culprit fails


def _pool(
    items: list[Item], size: int, job: Any, setup: tuple[Any, ...], broken: list[Item] | None
) -> Iterator[BatchResult]:
    """`items` in a fresh pool of `size` processes, results as they end. A worker that dies
    (killed, out of memory) breaks the pool: its unfinished items go to `broken` (to be run
    again) or, when that is None, come back as failed results."""
    with ProcessPoolExecutor(size, _context(), _start_worker, setup) as pool:
        futures = {pool.submit(job, item): item for item in items}
        try:
            for future in as_completed(futures):
                error = future.exception()
                if error is None:
                    yield future.result()
                elif broken is not None and isinstance(error, BrokenProcessPool):
                    broken.append(futures[future])
                else:
                    path, wanted = futures[future]
                    died = isinstance(error, BrokenProcessPool)
                    why = "its worker process died (killed, out of memory?)" if died else error
                    text = redact(f"{type(error).__name__}: {why}")
                    yield BatchResult(path, wanted or Path(path).stem, None, error=text,
                                      exit_code=1)  # fmt: skip
        finally:  # stopped early (Ctrl-C, a consumer that breaks): run nothing more
            pool.shutdown(wait=True, cancel_futures=True)


def _plan(declarations: Iterable[str | Path | Outcome]) -> tuple[list[Item], list[BatchResult]]:
    """Each file once, each outcome once (by the `outcome:` a YAML file declares): what to run,
    and a failed result for each further file that declares an outcome already given."""
    from cycles.declaration.loader import YAML_SUFFIXES, _declared_id

    todo: list[Item] = []
    twice: list[BatchResult] = []
    first: dict[str, str] = {}
    for path, wanted in dict.fromkeys(_items(declarations)):
        declared = wanted or (_declared_id(Path(path)) if path.endswith(YAML_SUFFIXES) else None)
        if declared in first:
            again = f"outcome {declared!r} is also declared in {first[declared]}: not run twice"
            error = str(DeclarationError(again, file=path))
            twice.append(BatchResult(path, str(declared), None, error=error, exit_code=2))
            continue
        if declared is not None:
            first[declared] = path
        todo.append((path, wanted))
    return todo, twice


def _items(declarations: Iterable[str | Path | Outcome]) -> Iterator[Item]:
    from cycles.declaration.loader import declaration_files

    for item in declarations:
        if isinstance(item, Outcome):
            if item.source is None:
                raise ValueError(f"outcome {item.outcome!r} has no declaration file to load")
            yield str(item.source.resolve()), item.outcome
        elif Path(item).is_dir():
            yield from ((str(p.resolve()), None) for p in declaration_files(Path(item)))
        else:
            yield str(Path(item).resolve()), None


def _context() -> Any:
    """Fork workers from a server that imported the engine already (else spawn them)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


# -- in the worker processes -------------------------------------------------------------------

_WORKER: dict[str, Any] = {}


def _start_worker(url: str, environ: dict[str, str], cwd: str) -> None:
    """The caller's environment and directory (the forkserver may be older). Ctrl-C is the
    caller's: cycles under way finish, queued ones are cancelled."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    _WORKER["url"] = url
    from cycles.hierarchy import fix_declarations

    fix_declarations()  # each review would read every declaration under ./flows again


def _run_one(item: Item, *, period: str | None, review: bool, dry_run: bool) -> BatchResult:
    """What `radar run FILE` does (load, preflight, run_cycle), as a result instead of an exit."""
    from cycles.declaration.loader import load, load_python
    from cycles.engine import parse_period, preflight, run_cycle
    from cycles.store import Store, default_url

    clock, cpu = time.perf_counter(), time.process_time()
    path, wanted = item
    fields: dict[str, Any] = {"outcome": wanted or Path(path).stem, "period": None}
    try:
        python = wanted is not None and path.endswith(".py")
        found = load_python(Path(path)) if python else [load(path)]
        outcome = next((o for o in found if wanted in (None, o.outcome)), None)
        if outcome is None:
            raise DeclarationError(f"no outcome {wanted!r} is declared here", file=path)
        fields["outcome"] = outcome.outcome
        the_period = parse_period(outcome, period)
        fields["period"] = str(the_period)
        preflight(outcome)
        if "store" not in _WORKER:  # one per worker process; the caller migrated it
            _WORKER["store"] = Store(_WORKER.get("url") or default_url(), migrate=False)
        record = run_cycle(outcome, the_period, store=_WORKER["store"], review=review,
                           dry_run=dry_run)  # fmt: skip
        fields["decision"] = record.decision.value if record.decision else None
        fields["record"] = _redacted(record)
    except Exception as exc:
        fields["error"] = redact(" ".join(error_text(exc).split()))
        fields["exit_code"] = exc.exit_code if isinstance(exc, RadarError) else 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return BatchResult(
        source=path, seconds=time.perf_counter() - clock, worker=os.getpid(),
        cpu_seconds=time.process_time() - cpu, peak_mb=peak, **fields,
    )  # fmt: skip


def _redacted(record: CycleRecord) -> CycleRecord:
    """The record without the secrets this process knows (the caller does not know them)."""
    text = record.model_dump_json()
    clean = redact(text)
    return record if clean == text else CycleRecord.model_validate_json(clean)


__all__ = ["BatchResult", "default_workers", "run_many"]
