"""Lineage computes only what is asked, on both cores when there is a lot: `only=` gives the full
computation's results restricted to the asked subgraph, the process pool gives the serial
results edge for edge, small projects and one core stay serial, and Ctrl-C leaves no worker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dataops_dev import impact as impact_module
from dataops_dev import lineage as lineage_module
from dataops_dev.dbt.manifest import Manifest
from dataops_dev.impact import analyze_impact
from dataops_dev.lineage import (
    PARALLEL_MIN_MODELS,
    ProjectLineage,
    column_lineage,
    compute_lineage,
    downstream_closure,
    lineage_workers,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def project_120(tmp_path_factory: pytest.TempPathFactory, gen_project: Callable[..., Path]) -> Path:
    return gen_project(tmp_path_factory.mktemp("scope") / "p", n_models=120, n_columns=8, seed=5)


@pytest.fixture(scope="module")
def full_serial(project_120: Path) -> ProjectLineage:
    return compute_lineage(Manifest.load(project_120 / "target" / "manifest.json"), workers=1)


class PoolSpy:
    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started = 0
        real = lineage_module._pool_context

        def counting() -> Any:
            self.started += 1
            return real()

        monkeypatch.setattr(lineage_module, "_pool_context", counting)


def _targets(manifest: Manifest) -> list[str]:
    order = [n.unique_id for n in manifest.dependency_order]
    return [order[0], order[len(order) // 5], order[len(order) // 2], order[-1]]


def test_only_equals_the_full_computation_restricted(
    project_120: Path, full_serial: ProjectLineage
) -> None:
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    for target in _targets(manifest):
        wanted = downstream_closure(manifest, {target})
        part = compute_lineage(manifest, only=wanted, workers=1)
        assert set(part.models) < set(full_serial.models) or len(wanted) == len(part.models)
        assert set(wanted) <= set(part.models)
        for uid, model in part.models.items():
            assert model == full_serial.models[uid], uid
            assert part.schemas[uid] == full_serial.schemas[uid]
        # What `lineage MODEL` walks is the same, column by column and for the whole model.
        columns = [None, *(full_serial.schemas[target] or ())[:3]]
        for column in columns:
            assert part.upstream(target, column) == full_serial.upstream(target, column)
            assert part.downstream(target, column) == full_serial.downstream(target, column)


def test_column_lineage_walks_the_same_edges_and_computes_less(
    project_120: Path, full_serial: ProjectLineage
) -> None:
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    order = [n.unique_id for n in manifest.dependency_order]
    fewer = 0
    for target in order[::7]:
        for column in (None, "id", "fk", "c3", "*"):
            part = column_lineage(manifest, target, column, workers=1)
            assert part.upstream(target, column) == full_serial.upstream(target, column)
            assert part.downstream(target, column) == full_serial.downstream(target, column)
            for uid, model in part.models.items():
                assert model == full_serial.models[uid], uid
            closure = compute_lineage(manifest, only=downstream_closure(manifest, {target}))
            assert set(part.models) <= set(closure.models)
            fewer += len(part.models) < len(closure.models)
        # Upstream only: the edges of what the column's upstream reaches, within the ancestors
        # (the other ancestors are computed for their columns only).
        upstream_only = column_lineage(manifest, target, "c3", downstream=False, workers=1)
        assert set(upstream_only.models) <= set(compute_lineage(manifest, only={target}).models)
        assert upstream_only.upstream(target, "c3") == full_serial.upstream(target, "c3")
    assert fewer > 0  # the column reaches less than the whole downstream somewhere


def test_column_lineage_on_the_pool_equals_serial(
    project_120: Path, full_serial: ProjectLineage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lineage_module, "PARALLEL_MIN_MODELS", 4)
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    target = manifest.dependency_order[0].unique_id
    pooled = column_lineage(manifest, target, None, workers=2)
    assert len(pooled.models) > 8
    assert pooled.downstream(target) == full_serial.downstream(target)
    assert all(model == full_serial.models[uid] for uid, model in pooled.models.items())


def test_ancestors_for_their_columns_only_give_the_same_models_and_columns(
    project_120: Path, full_serial: ProjectLineage, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(lineage_module, "PARALLEL_MIN_MODELS", 4)
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    for target in _targets(manifest)[1:3]:
        wanted = downstream_closure(manifest, {target})
        ancestors = {
            a for a in lineage_module._ancestors(manifest, wanted) if a in full_serial.models
        }
        for workers in (1, 2):
            part = compute_lineage(
                manifest, only=wanted, full_ancestors=False, workers=workers, cache_dir=tmp_path
            )
            assert set(part.models) == wanted
            assert all(part.models[uid] == full_serial.models[uid] for uid in wanted)
            assert {uid: part.schemas[uid] for uid in ancestors} == {
                uid: full_serial.schemas[uid] for uid in ancestors
            }
    # The columns-only entries are cached too: a second run computes nothing.
    again = compute_lineage(manifest, only=wanted, full_ancestors=False, cache_dir=tmp_path)
    assert again.stats.computed == 0 and again.models == part.models


def test_upstream_only_computes_the_ancestors(project_120: Path) -> None:
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    target = _targets(manifest)[2]
    part = compute_lineage(manifest, only={target}, workers=1)
    ancestors = {target} | {a for a in part.models if target in manifest.descendants([a])}
    assert set(part.models) == ancestors
    assert part.stats.computed == len(part.models) < len(manifest.dependency_order)


def test_parallel_equals_serial_edge_for_edge(
    project_120: Path, full_serial: ProjectLineage, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PoolSpy(monkeypatch)
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    parallel = compute_lineage(manifest, workers=2)
    assert spy.started == 1
    assert list(parallel.edges()) == list(full_serial.edges())
    assert list(parallel.models) == list(full_serial.models)
    assert dict(parallel.schemas) == dict(full_serial.schemas)
    assert parallel.models == full_serial.models
    assert parallel.stats == full_serial.stats


def test_parallel_with_a_cache_stores_what_serial_reads(
    project_120: Path, full_serial: ProjectLineage, tmp_path: Path
) -> None:
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    cold = compute_lineage(manifest, workers=2, cache_dir=tmp_path)
    warm = compute_lineage(manifest, workers=1, cache_dir=tmp_path)
    assert warm.stats.cached == cold.stats.computed == len(full_serial.models)
    assert list(warm.edges()) == list(cold.edges()) == list(full_serial.edges())


def test_small_projects_and_one_core_stay_serial(
    small_project: Path, project_120: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = PoolSpy(monkeypatch)
    small = Manifest.load(small_project / "target" / "manifest.json")
    assert len(small.dependency_order) < PARALLEL_MIN_MODELS
    compute_lineage(small, workers=2)
    assert spy.started == 0

    monkeypatch.setattr(os, "sched_getaffinity", lambda _pid: {0})
    monkeypatch.delenv("DATAOPS_LINEAGE_WORKERS", raising=False)
    assert lineage_workers() == 1
    compute_lineage(Manifest.load(project_120 / "target" / "manifest.json"))
    assert spy.started == 0
    monkeypatch.setenv("DATAOPS_LINEAGE_WORKERS", "3")
    assert lineage_workers() == 3
    assert lineage_workers(1) == 1


def test_impact_reads_only_the_changed_subgraph_and_reports_the_same(
    tmp_path: Path, gen_project: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    project = gen_project(tmp_path / "p", n_models=120, n_columns=8, seed=5)
    manifest = Manifest.load(project / "target" / "manifest.json")
    order = [n for n in manifest.dependency_order]
    from benchmarks.gen_project import apply_edits

    assert len(apply_edits(project, 120)) == 3
    # A changed model that now joins a model it never read: its parents' columns must be known.
    early = order[30]
    late = next(
        n for n in reversed(order) if n.unique_id not in manifest.descendants([early.unique_id])
    )
    path = project / early.original_file_path
    path.write_text(
        path.read_text().replace(
            "select * from shaped",
            f"select shaped.*, x.c3 as x_c3 from shaped left join {{{{ ref('{late.name}') }}}}"
            " as x on x.id = shaped.id",
        )
    )
    scoped = analyze_impact(project, project / "target" / "manifest.json")
    assert 0 < scoped.timings["lineage_computed"] < len(order)
    monkeypatch.setattr(impact_module, "lineage_scope", lambda *_args: None)
    full = analyze_impact(project, project / "target" / "manifest.json")
    assert full.timings["lineage_computed"] == len(order)

    def comparable(report: Any) -> dict[str, Any]:
        data = report.to_dict()
        data.pop("timings")
        return data

    assert comparable(scoped) == comparable(full)
    changes = {m.name: m for m in scoped.models}
    assert "x_c3" in changes[early.name].added_columns


_INTERRUPTED = """
import sys
from pathlib import Path
from dataops_dev.dbt.manifest import Manifest
from dataops_dev.lineage import compute_lineage
from dataops_dev.reporting import NULL_REPORTER
import multiprocessing

class Tell(type(NULL_REPORTER)):
    told = False
    def task_advanced(self, *args, **kwargs):
        if not self.told and multiprocessing.active_children():
            self.told = True
            pids = [p.pid for p in multiprocessing.active_children()]
            print(" ".join(map(str, pids)), flush=True)

compute_lineage(Manifest.load(Path(sys.argv[1])), workers=2, reporter=Tell())
print("finished", flush=True)
"""


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads worker states from /proc")
def test_ctrl_c_leaves_no_worker_behind(tmp_path: Path, gen_project: Callable[..., Path]) -> None:
    project = gen_project(tmp_path / "p", n_models=400, n_columns=8, seed=2)
    run = subprocess.Popen(
        [sys.executable, "-c", _INTERRUPTED, str(project / "target" / "manifest.json")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    assert run.stdout is not None
    line = run.stdout.readline().strip()
    assert line and line != "finished", line
    workers = [int(pid) for pid in line.split()]
    assert workers and all(_alive(pid) for pid in workers)
    run.send_signal(signal.SIGINT)
    _out, err = run.communicate(timeout=60)
    assert run.returncode != 0
    assert "KeyboardInterrupt" in err
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def test_a_torn_or_foreign_cache_entry_is_computed_again(
    project_120: Path, full_serial: ProjectLineage, tmp_path: Path
) -> None:
    manifest = Manifest.load(project_120 / "target" / "manifest.json")
    target = _targets(manifest)[2]
    wanted = downstream_closure(manifest, {target})
    compute_lineage(manifest, only=wanted, full_ancestors=False, cache_dir=tmp_path, workers=1)
    entries = sorted(tmp_path.rglob("*.json"))
    assert any(p.name.endswith(".columns.json") for p in entries)
    assert not list(tmp_path.rglob("*.tmp"))  # every write was renamed into place
    for index, path in enumerate(entries):
        text = path.read_text(encoding="utf-8")
        # Torn halfway, or whole but naming another key: both read as "no cache".
        path.write_text(
            text[: len(text) // 2]
            if index % 2
            else text.replace('"cache_key":"', '"cache_key":"x'),
            encoding="utf-8",
        )
    again = compute_lineage(
        manifest, only=wanted, full_ancestors=False, cache_dir=tmp_path, workers=1
    )
    assert again.stats.cached == 0
    assert all(again.models[uid] == full_serial.models[uid] for uid in wanted)
