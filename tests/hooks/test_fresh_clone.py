"""The fast hooks on a fresh clone of a project in a subfolder (`ir_transform`: dbt in
`transform/`), run from the repository root with repo-relative paths as pre-commit runs them:
the impact guard first skips with a one-line note naming the command that enables it, then,
after that command (`dataops-dev impact --base main`), uses main's cached parse — without
starting dbt, DuckDB or GitPython — and agrees with `impact`."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dataops_dev.hooks import HookId, _git_ref, hook_base, load_project_config, run_hook
from tests.real_projects import ProjectRepo, make_project_repo

pytestmark = pytest.mark.slow

MODEL = "transform/models/customer_segments.sql"
ENABLE = "dataops-dev --project-dir transform impact --base main"


def _fresh_clone(tmp_path: Path) -> ProjectRepo:
    """ir_transform cloned, `customer_segments` protected (committed on main), and a branch
    that drops its `name` column, staged."""
    repo = make_project_repo("ir_transform", tmp_path, project_subdir="transform")
    repo.write("dataops_dev.yml", "version: 1\nhooks:\n  protected: [customer_segments]\n")
    repo.commit("protect customer_segments")
    repo.checkout_new_branch("feature/segments")
    repo.replace("models/customer_segments.sql", "    name,\n", "")
    repo.git("add", "-A")
    return repo


def _hook(repo: ProjectRepo, hook: str, *args: str) -> subprocess.CompletedProcess[str]:
    return repo.run("hook", hook, *args, MODEL, cwd=repo.root)


def test_fresh_clone_guard_skips_with_a_note_then_uses_mains_cached_parse(
    tmp_path: Path,
) -> None:
    repo = _fresh_clone(tmp_path)

    # Nothing prepared: the guard passes, and says so on one line with the command to run.
    skipped = _hook(repo, "impact-guard")
    assert skipped.returncode == 0, skipped.stderr
    assert skipped.stdout == ""
    note = skipped.stderr.strip().splitlines()
    assert len(note) == 1 and "impact-guard skipped (transform)" in note[0], note
    assert f"run `{ENABLE}` once" in note[0]
    as_json = _hook(repo, "impact-guard", "--json")
    assert json.loads(as_json.stdout)["notes"] == [note[0].removeprefix("dataops-dev: ")]
    # Asked to be strict, it fails with the same command as the hint (exit 1: no base).
    strict = _hook(repo, "impact-guard", "--missing-manifest", "fail")
    assert strict.returncode == 1
    assert "no base manifest to compare transform with" in strict.stderr
    assert ENABLE in strict.stderr
    assert not (repo.project / ".dataops" / "cache" / "manifests").exists(), "no dbt parse"

    # The other fast hooks work from the root with repo-relative paths.
    assert _hook(repo, "sql-check").returncode == 0
    keys = _hook(repo, "keys-and-tests")
    assert keys.returncode == 3
    assert keys.stdout.startswith(f"{MODEL}:1:1: model customer_segments: no primary key")

    # The command from the note, as printed, from the repository root.
    enabled = repo.run(*ENABLE.split()[1:], cwd=repo.root)
    assert enabled.returncode == 0, enabled.stderr
    guarded = _hook(repo, "impact-guard")
    assert guarded.returncode == 3, guarded.stderr
    assert guarded.stdout.startswith(
        f"{MODEL}:3:1: breaking change to customer_segments: removed columns: name"
    )
    assert "skipped" not in guarded.stderr

    # The hook's base is the very manifest `impact` parsed (same key, same tree id).
    loaded = load_project_config(repo.project)
    base = hook_base(loaded)
    assert base is not None and "parsed and cached" in base.origin
    from dataops_dev import gitrepo
    from dataops_dev.impact import resolve_base

    side = resolve_base(loaded, None)
    assert (base.manifest, base.code_dir) == (side.manifest, side.code_dir)
    commit = gitrepo.resolve(repo.project, "main")
    assert _git_ref(repo.project, "main") == (
        commit,
        gitrepo.tree_id(repo.project, commit),
        "transform/",
    )

    # Approving the finding (found through the same base) lets the commit through.
    fingerprint = json.loads(_hook(repo, "impact-guard", "--json").stdout)["problems"][0][
        "fingerprint"
    ]
    approved = repo.run(
        "--project-dir", "transform", "decide", "approve", fingerprint, "--note", "ok",
        cwd=repo.root,
    )  # fmt: skip
    assert approved.returncode == 0, approved.stderr
    acknowledged = _hook(repo, "impact-guard")
    assert acknowledged.returncode == 0 and "(acknowledged: approved by" in acknowledged.stdout

    # Still the fast path: neither dbt, DuckDB nor GitPython is imported.
    probe = (
        "import sys\n"
        "from dataops_dev.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'dbt', 'duckdb', 'git'})\n"
        "print('PROBE', code, heavy, file=sys.stderr)\n"
    )
    for hook in ("sql-check", "impact-guard", "keys-and-tests"):
        run = subprocess.run(
            [sys.executable, "-c", probe, "hook", hook, MODEL],
            cwd=repo.root,
            capture_output=True,
            text=True,
            check=False,
        )
        assert (
            run.stderr.strip().splitlines()[-1]
            == f"PROBE {3 if hook == 'keys-and-tests' else 0} []"
        )


def test_reviews_baseline_serves_too_and_no_base_is_a_note(tmp_path: Path) -> None:
    """The baseline `review` built for main's commit serves as main's parse does; with
    neither, the guard passes with the note (never silently, never a crash)."""
    repo = _fresh_clone(tmp_path)
    assert repo.run(*ENABLE.split()[1:], cwd=repo.root).returncode == 0
    loaded = load_project_config(repo.project)
    base = hook_base(loaded)
    assert base is not None
    cached = base.manifest

    commit = repo.git("rev-parse", "main")
    baseline = repo.project / ".dataops" / "envs" / f"base_{commit[:12]}" / "target"
    baseline.mkdir(parents=True)
    shutil.copy(cached, baseline / "manifest.json")
    shutil.rmtree(cached.parent)
    from_review = hook_base(loaded)
    assert from_review is not None and "review's baseline" in from_review.origin
    result = run_hook(HookId.IMPACT_GUARD, [Path(MODEL)], cwd=repo.root)
    assert [p.model for p in result.problems] == ["customer_segments"]

    shutil.rmtree(baseline.parent)
    assert hook_base(loaded) is None
    result = run_hook(HookId.IMPACT_GUARD, [Path(MODEL)], cwd=repo.root)
    assert result.ok and len(result.notes) == 1 and ENABLE in result.notes[0]


def test_sql_check_on_a_fresh_clone_knows_seeds_and_snapshots(tmp_path: Path) -> None:
    """Without any manifest, `ref()` to a seed or a snapshot of the working tree renders (the
    check once failed fs_seeds' untouched model on a fresh clone); an unknown name still fails."""
    repo = make_project_repo("fs_seeds", tmp_path)
    repo.write("snapshots/people_snapshot.sql", "{% snapshot people_snapshot %}\n"
               "  select * from {{ ref('people') }}\n{% endsnapshot %}\n")  # fmt: skip
    repo.replace("models/people_by_floor.sql", "join", "-- by team\njoin")
    loaded = load_project_config(repo.project)
    assert hook_base(loaded) is None
    model = "models/people_by_floor.sql"
    assert run_hook(HookId.SQL_CHECK, [Path(model)], cwd=repo.root).ok
    repo.replace("models/people_by_floor.sql", "ref('teams')", "ref('people_snapshot')")
    assert run_hook(HookId.SQL_CHECK, [Path(model)], cwd=repo.root).ok
    repo.replace("models/people_by_floor.sql", "ref('people_snapshot')", "ref('staff')")
    result = run_hook(HookId.SQL_CHECK, [Path(model)], cwd=repo.root)
    assert [(p.path, p.line) for p in result.problems] == [(model, 4)]
    assert "ref('staff') names no model" in result.problems[0].message


def test_a_master_repository_is_told_which_branch_to_configure(tmp_path: Path) -> None:
    """`impact --base main` would fail where the default branch is `master`: the note names
    the setting and the command that work there, and after them the guard runs."""
    repo = make_project_repo("nc_shop", tmp_path, branch="master")
    repo.checkout_new_branch("feature/orders")
    model = "models/stg_orders.sql"
    repo.write(model, repo.path(model).read_text() + "\n-- touched\n")
    skipped = run_hook(HookId.IMPACT_GUARD, [Path(model)], cwd=repo.root)
    assert skipped.ok
    assert skipped.notes == (
        "impact-guard skipped (nc_shop): no base manifest yet; no branch 'main' here: set "
        "`production: {main_branch: master}` in dataops_dev.yml, then run "
        "`dataops-dev impact --base master` once to enable it",
    )
    repo.write("dataops_dev.yml", "version: 1\nproduction:\n  main_branch: master\n")
    assert repo.run("impact", "--base", "master", cwd=repo.root).returncode == 0
    base = hook_base(load_project_config(repo.project))
    assert base is not None and base.origin.startswith("master at ")
    result = run_hook(HookId.IMPACT_GUARD, [Path(model)], cwd=repo.root)
    assert result.ok and result.notes == ()  # a comment is no model change
