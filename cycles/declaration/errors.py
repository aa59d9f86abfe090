"""Validation errors that carry the key path they refer to, so YAML errors can name a line."""

from __future__ import annotations

from typing import Any

from pydantic_core import PydanticCustomError

Loc = tuple[str | int, ...]


def located(loc: Loc, message: str) -> PydanticCustomError:
    """A validation error for the key path `loc`, relative to where the validator sits."""
    return PydanticCustomError("radar", "{message}", {"message": message, "radar_loc": loc})


def first_error(exc: Any) -> tuple[Loc, str]:
    """(loc, message) of the first error of a pydantic ValidationError, `radar_loc` resolved."""
    err = exc.errors(include_url=False)[0]
    return resolve(err)


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
