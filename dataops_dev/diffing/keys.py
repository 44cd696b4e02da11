"""Which columns identify a model's rows: config first, then what the dbt project declares.

Order: `diff.keys` in dataops_dev.yml, the `primary_key` constraint, `meta.primary_key`, a column
with `unique` + `not_null` tests, a `unique_combination_of_columns` test (`Manifest.primary_key`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dataops_dev.dbt.manifest import Manifest


def discover_key(
    manifest: Manifest | None,
    unique_id: str,
    config_keys: Mapping[str, Sequence[str]] | None = None,
) -> tuple[str, ...] | None:
    """The key of `unique_id` (e.g. "model.shop.dim_customers"), or None when nothing declares one.

    `config_keys` is keyed by model name or unique_id, as written under `diff.keys`.
    """
    name = unique_id.rsplit(".", 1)[-1]
    for candidate in (unique_id, name):
        if config_keys and candidate in config_keys:
            declared = config_keys[candidate]
            return (declared,) if isinstance(declared, str) else tuple(declared)
    if manifest is None:
        return None
    return manifest.primary_key(unique_id)
