"""Declarations of outcomes: the model, and loading it from YAML or Python with good errors."""

from cycles.declaration.loader import find, load, load_python, load_yaml
from cycles.declaration.model import (
    AdjustSpec,
    ApproachSpec,
    Direction,
    MetricSpec,
    Outcome,
    PolicySpec,
    ResultSpec,
    ReviewSpec,
)

__all__ = [
    "AdjustSpec",
    "ApproachSpec",
    "Direction",
    "MetricSpec",
    "Outcome",
    "PolicySpec",
    "ResultSpec",
    "ReviewSpec",
    "find",
    "load",
    "load_python",
    "load_yaml",
]
