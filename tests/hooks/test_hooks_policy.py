"""The impact guard reads the review policy's `allow_breaking` exactly as the review does: the
default counts, an exact model name beats a pattern, and a broken contract is never allowed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from dataops_dev.config import load_config
from dataops_dev.hooks import HookId, run_hook
from dataops_dev.policy import evaluate
from dataops_dev.report.model import ChangeKind, ModelReport, ModelStatus
from tests.hooks.conftest import HookRepo

# Exposure and contract guards off: stg_stores is guarded only because it is protected.
GUARD = "hooks:\n  guard_exposures: false\n  guard_contracts: false\n  protected: ['stg_*']\n"


def _config(repo: HookRepo, text: str) -> None:
    repo.write("dataops_dev.yml", "version: 1\n" + text)


def _guard(repo: HookRepo, file: str) -> tuple[list[str], list[str]]:
    result = run_hook(HookId.IMPACT_GUARD, [repo.rel(file)], cwd=repo.root)
    return [p.model or "" for p in result.problems], [
        p.acknowledged_by or "" for p in result.acknowledged
    ]


def _review_blocks(repo: HookRepo, name: str, *, contract_broken: bool = False) -> bool:
    """Whether the review's policy blocks a breaking change to `name` under the repo's config."""
    loaded = load_config(repo.project)
    model = ModelReport(
        name=name,
        unique_id=f"model.sample_project.{name}",
        status=ModelStatus.MODIFIED,
        change=ChangeKind.BREAKING,
        contract_broken=contract_broken,
    )
    return any(f.blocking for f in evaluate(model, loaded.config.policy))


@pytest.mark.slow
def test_guard_and_review_agree_on_policy_allow_breaking(
    hook_repo: Callable[..., HookRepo],
) -> None:
    repo = hook_repo("analytics")
    stores = "models/staging/stg_stores.sql"
    repo.edit(stores, "store_id,", "store_id as id,")

    _config(repo, GUARD)
    assert _guard(repo, stores) == (["stg_stores"], [])
    assert _review_blocks(repo, "stg_stores")

    # policy.default applies to every model, in the review and so in the hook.
    _config(repo, GUARD + "policy:\n  default:\n    allow_breaking: true\n")
    assert _guard(repo, stores) == ([], ["allowed by policy.default.allow_breaking"])
    assert not _review_blocks(repo, "stg_stores")

    # A pattern allows...
    _config(repo, GUARD + "policy:\n  models:\n    'stg_*': {allow_breaking: true}\n")
    assert _guard(repo, stores) == ([], ["allowed by policy.models.stg_*.allow_breaking"])
    assert not _review_blocks(repo, "stg_stores")

    # ...but the model's own entry wins over it, as in the review.
    _config(
        repo,
        GUARD + "policy:\n  models:\n    'stg_*': {allow_breaking: true}\n"
        "    stg_stores: {allow_breaking: false}\n",
    )
    assert _guard(repo, stores) == (["stg_stores"], [])
    assert _review_blocks(repo, "stg_stores")


@pytest.mark.slow
def test_policy_allowance_never_covers_a_broken_contract(
    hook_repo: Callable[..., HookRepo],
) -> None:
    repo = hook_repo("analytics")
    customers = "models/marts/dim_customers.sql"
    repo.edit(customers, "    cast(customers.email as {{ dbt.type_string() }}) as email,\n", "")
    _config(repo, "policy:\n  default:\n    allow_breaking: true\n")
    assert _guard(repo, customers) == (["dim_customers"], [])
    assert _review_blocks(repo, "dim_customers", contract_broken=True)
    # The hook's own standing allowance is what lets a guarded contract change through.
    _config(repo, "hooks:\n  allow_breaking: [dim_customers]\n")
    assert _guard(repo, customers) == ([], ["allowed by hooks.allow_breaking"])
