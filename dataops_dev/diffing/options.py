"""Turns the `diff:` config section into `DiffOptions` for one model.

Per-column settings are written `model.column` (or `*.column` for every model) in the config.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import TYPE_CHECKING

from dataops_dev.diffing.model import DiffOptions, Tolerance

if TYPE_CHECKING:  # the config loader (yaml) stays out of a plain `import dataops_dev.diffing`
    from dataops_dev.config import DiffConfig


def _for_model(entries: dict[str, object], model: str) -> dict[str, object]:
    # "*.col" applies everywhere; "model.col" wins over it.
    picked: dict[str, object] = {}
    for prefix in ("*", model):
        for dotted, value in entries.items():
            owner, _, column = dotted.rpartition(".")
            if owner == prefix and column:
                picked[column] = value
    return picked


def options_for_model(config: DiffConfig, model: str) -> DiffOptions:
    """The options for `model` (its name, as in `model.column` keys)."""
    tolerance = {
        column: Tolerance(abs=t.abs, rel=t.rel)  # type: ignore[attr-defined]
        for column, t in _for_model(dict(config.tolerance), model).items()
    }
    precision = {
        column: str(unit)
        for column, unit in _for_model(dict(config.timestamp_precision), model).items()
    }
    return DiffOptions(
        examples=config.examples,
        example_rows=config.example_rows,
        tolerance=MappingProxyType(tolerance),
        timestamp_precision=MappingProxyType(precision),
        # One model's odd column must not stop a whole review: fall back and note it instead.
        strict=False,
    )
