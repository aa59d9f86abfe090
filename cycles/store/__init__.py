"""The history database: the only package that talks SQLAlchemy.

`Store` is imported lazily so `import cycles.store` (and `default_url`) stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cycles.urls import default_url, normalise_url

if TYPE_CHECKING:
    from cycles.store.store import Store

__all__ = ["Store", "default_url", "normalise_url"]


def __getattr__(name: str) -> Any:
    if name == "Store":
        from cycles.store.store import Store

        return Store
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
