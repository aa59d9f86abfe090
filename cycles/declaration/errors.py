"""Validation errors that carry the key path they refer to, so YAML errors can name a line."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]


def key_path(loc: Loc) -> str:
    """("approaches", 0, "params") -> "approaches[0].params"."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def line_of(lines: dict[Loc, int], loc: Loc) -> int | None:
    """The line of the nearest key on `loc` that has one (`loc` itself, else its parents)."""
    for end in range(len(loc), -1, -1):
        if loc[:end] in lines:
            return lines[loc[:end]]
    return None


def located(loc: Loc, message: str) -> PydanticCustomError:
    """A validation error for the key path `loc`, relative to where the validator sits."""
    return PydanticCustomError("radar", "{message}", {"message": message, "radar_loc": loc})


def ranked_errors(exc: Any) -> list[tuple[Loc, str, bool]]:
    """(loc, message, is_missing) of each error, what is written before what is missing.

    A typo in a key causes two errors (unknown key, required key missing); the typo is the one
    to report, with the missing sibling it probably meant.
    """
    raw = exc.errors(include_url=False)
    resolved = [resolve(err) for err in raw]
    missing = {loc for (loc, _), err in zip(resolved, raw, strict=True) if err["type"] == "missing"}
    ranked = [(loc, _suggest(loc, message, missing), loc in missing) for loc, message in resolved]
    return sorted(ranked, key=lambda e: e[2])


def first_error(exc: Any) -> tuple[Loc, str]:
    """The error of a pydantic ValidationError to report, `radar_loc` resolved."""
    loc, message, _ = ranked_errors(exc)[0]
    return loc, message


def _suggest(loc: Loc, message: str, missing: set[Loc]) -> str:
    if message != "unknown key" or not loc:
        return message
    import difflib

    siblings = [str(m[-1]) for m in missing if m[:-1] == loc[:-1]]
    hint = difflib.get_close_matches(str(loc[-1]), siblings, n=1)
    return f"unknown key (did you mean {hint[0]!r}?)" if hint else message


def resolve(err: dict[str, Any]) -> tuple[Loc, str]:
    loc: Loc = tuple(err.get("loc", ()))
    ctx = err.get("ctx") or {}
    if "radar_loc" in ctx:
        return loc + tuple(ctx["radar_loc"]), str(ctx["message"])
    loc = tuple(part for part in loc if not _is_validator_tag(part))
    message = err.get("msg", "invalid")
    if err.get("type") == "extra_forbidden":
        message = "unknown key"
    elif err.get("type") == "missing":
        message = "required key is missing"
    return loc, message


def _is_validator_tag(part: object) -> bool:
    # pydantic inserts function names into locations for Annotated validators / unions
    return isinstance(part, str) and (part.startswith("function-") or "[" in part)
