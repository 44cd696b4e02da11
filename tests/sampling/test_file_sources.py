"""File-backed dbt sources (dbt-duckdb `external_location`) and seed-only projects.

File sources are production data: sampled and masked like tables, and environments never read
the files. Seeds are committed data: never masked, and examples drawn from them never labelled
masked.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest

from dataops_dev.dbt.manifest import Manifest
from dataops_dev.engines.duckdb import DuckDBEngine
from dataops_dev.file_sources import FILES_ALIAS, discover, load
from dataops_dev.sources import data_notes, seeds_upstream
from tests.real_projects import FIXTURES, ProjectRepo, make_project_repo

# ------------------------------------------------------------------------------------------
# Discovery and paths (no dbt)


def _source(name: str, table: str, relation_name: str, **extra: Any) -> dict[str, Any]:
    return {
        "unique_id": f"source.p.{name}.{table}",
        "resource_type": "source",
        "name": table,
        "source_name": name,
        "schema": name,
        "identifier": table,
        "relation_name": relation_name,
        "config": extra.get("config", {}),
        "meta": extra.get("meta", {}),
    }


def _manifest(*sources: dict[str, Any], nodes: dict[str, Any] | None = None) -> Manifest:
    return Manifest(
        {
            "metadata": {"project_name": "p"},
            "nodes": nodes or {},
            "sources": {s["unique_id"]: s for s in sources},
        }
    )


def test_external_locations_resolve_relative_to_the_project(tmp_path: Path) -> None:
    manifest = _manifest(
        _source(
            "crm",
            "customers",
            "read_csv('data/customers.csv', header = true)",
            meta={"external_location": "read_csv('data/{name}.csv', header = true)"},
        ),
        _source(
            "ev",
            "clicks",
            "read_parquet(['lake/a/*.parquet', '/abs/b.parquet'])",
            config={"external_location": "read_parquet(['lake/a/*.parquet', '/abs/b.parquet'])"},
        ),
        _source("crm", "tickets", "'data/tickets.csv'", config={"external_location": "x"}),
        _source("db", "orders", '"prod"."db"."orders"'),
    )
    found = discover(manifest, tmp_path)
    assert sorted(found) == ["crm.customers", "crm.tickets", "ev.clicks"]
    customers = found["crm.customers"]
    assert customers.paths == (str(tmp_path / "data" / "customers.csv"),)
    assert str(tmp_path / "data" / "customers.csv") in customers.expression
    assert "header" in customers.expression.lower()
    assert found["ev.clicks"].paths == (
        str(tmp_path / "lake" / "a" / "*.parquet"),
        "/abs/b.parquet",
    )
    assert found["crm.tickets"].expression == f"'{tmp_path / 'data' / 'tickets.csv'}'"
    assert (found["crm.tickets"].relation.schema, found["crm.tickets"].relation.name) == (
        "crm",
        "tickets",
    )


@pytest.mark.parametrize(
    "location",
    [
        "read_csv((select 'x'))",
        "read_csv('a.csv', sep = (select 1))",
        "range(10)",
        "read_text('a')",
    ],
)
def test_an_external_location_is_a_file_reader_with_literal_arguments(
    tmp_path: Path, location: str
) -> None:
    from dataops_dev.errors import ProjectError

    manifest = _manifest(_source("raw", "t", location, meta={"external_location": location}))
    with pytest.raises(ProjectError, match="external location"):
        discover(manifest, tmp_path)


def test_readers_dbt_duckdb_passes_through(tmp_path: Path) -> None:
    location = "read_json_auto('events/*.json', format = 'array')"
    manifest = _manifest(_source("raw", "ev", location, meta={"external_location": location}))
    (found,) = discover(manifest, tmp_path).values()
    assert found.paths == (str(tmp_path / "events" / "*.json"),)
    remote = "read_parquet('s3://bucket/x.parquet')"
    manifest = _manifest(_source("raw", "x", remote, meta={"external_location": remote}))
    assert discover(manifest, tmp_path)["raw.x"].paths == ("s3://bucket/x.parquet",)


def test_file_sources_are_read_once_into_the_session(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "people.csv").write_text("id,name\n1,Ann\n2,Bo\n")
    manifest = _manifest(
        _source(
            "raw",
            "people",
            "read_csv('data/people.csv')",
            meta={"external_location": "read_csv('data/{name}.csv')"},
        )
    )
    found = discover(manifest, tmp_path)
    with DuckDBEngine(":memory:") as engine:
        tables = load(engine, found)
        (table,) = tables.values()
        assert table.database == FILES_ALIAS
        # A snapshot: the rows stay readable after the file is gone.
        (tmp_path / "data" / "people.csv").unlink()
        assert engine.fetchall(f"SELECT count(*) FROM {table.sql('duckdb')}") == [(2,)]


def test_a_missing_file_names_the_source(tmp_path: Path) -> None:
    from dataops_dev.errors import ProjectError

    manifest = _manifest(
        _source("raw", "people", "read_csv('data/people.csv')", meta={"external_location": "x"})
    )
    with DuckDBEngine(":memory:") as engine, pytest.raises(ProjectError, match="raw.people"):
        load(engine, discover(manifest, tmp_path))


def test_seeds_upstream_follows_models_to_seeds() -> None:
    nodes = {
        "seed.p.people": {"unique_id": "seed.p.people", "resource_type": "seed", "name": "people"},
        "model.p.stg": {
            "unique_id": "model.p.stg",
            "resource_type": "model",
            "name": "stg",
            "depends_on": {"nodes": ["seed.p.people"]},
        },
        "model.p.mart": {
            "unique_id": "model.p.mart",
            "resource_type": "model",
            "name": "mart",
            "depends_on": {"nodes": ["model.p.stg", "source.p.raw.x"]},
        },
        "model.p.other": {"unique_id": "model.p.other", "resource_type": "model", "name": "o"},
    }
    manifest = _manifest(nodes=nodes)
    assert seeds_upstream(manifest, ["model.p.mart"]) == ("people",)
    assert seeds_upstream(manifest, ["model.p.other"]) == ()


def test_notes_say_what_is_not_sampled_or_masked() -> None:
    (no_sources, seeds) = data_notes(0, 0, ("people", "teams"))
    assert "no sources" in no_sources and "nothing to sample or mask" in no_sources
    assert "people, teams" in seeds and "not sampled or masked" in seeds
    assert data_notes(3, 2, ()) == ()
    assert "no column needed masking" in data_notes(3, 0, ())[0]


def _record(tmp_path: Path, stamps: dict[str, str]) -> Any:
    from dataops_dev.sampling import Role, TableCoverage
    from dataops_dev.sources import SampleRecord

    return SampleRecord(
        sample_id="s0",
        backend="duckdb",
        location=str(tmp_path / "s0.duckdb"),
        created_at="",
        snapshot_time="",
        salt_env="DATAOPS_SALT",
        salt_fingerprint="f",
        versions={},
        config_hash="c",
        production_identity="p",
        anchors=(),
        tables=(TableCoverage("raw.people", Role.ANCHOR, 2, 1, 0, (("name", "full_name"),)),),
        relations=(),
        files=("raw.people",),
        file_stamps=stamps,
    )


def test_a_changed_file_makes_the_sample_stale_a_missing_one_does_not(tmp_path: Path) -> None:
    from dataops_dev.file_sources import current_stamps
    from dataops_dev.sources import SampleRecord, _files_changed, _missing_files

    data = tmp_path / "people.csv"
    data.write_text("id,name\n1,Ann\n")
    stamp = current_stamps([str(data)])[str(data)]
    assert stamp is not None
    record = _record(tmp_path, {str(data): stamp})
    assert not _files_changed(record) and _missing_files(record) == ()
    again = SampleRecord.from_json(json.loads(json.dumps(record.to_json())))
    assert again.files == record.files and again.file_stamps == record.file_stamps
    assert again.identity == record.identity != record.sample_id

    data.write_text("id,name\n1,Ann\n2,Bo\n")
    assert _files_changed(record)
    changed = _record(tmp_path, {str(data): current_stamps([str(data)])[str(data)] or ""})
    # Environments built on the old files are not taken for built on the new ones.
    assert changed.identity != record.identity

    data.unlink()
    assert not _files_changed(record) and _missing_files(record) == (str(data),)


# ------------------------------------------------------------------------------------------
# Real projects (dbt builds)


def _masked_raw_values(data_dir: Path, masked: dict[str, set[str]]) -> set[str]:
    """Every value of a masked column in the production files (`masked`: file stem -> columns)."""
    values: set[str] = set()
    for path in data_dir.glob("*.csv"):
        columns = masked.get(path.stem, set())
        with path.open(newline="") as handle:
            for row in csv.DictReader(handle):
                values.update(row[c] for c in columns if row.get(c))
    return values


def _leaks(state_dir: Path, raw: set[str], extra_texts: list[str]) -> list[str]:
    """Where a raw value appears: every DuckDB file's every stored value, every other file as
    text (JSON, markdown, HTML, YAML, logs, anything), and the texts given."""
    found = []
    encoded = [(value, value.encode()) for value in raw]
    for path in sorted(state_dir.rglob("*")):
        if not path.is_file():
            continue
        if path.suffix == ".duckdb":
            with duckdb.connect(str(path), read_only=True) as connection:
                tables = connection.execute(
                    "SELECT database_name, schema_name, table_name FROM duckdb_tables() "
                    "WHERE database_name = current_database()"
                ).fetchall()
                for database, schema, table in tables:
                    rows = connection.execute(
                        f'SELECT * FROM "{database}"."{schema}"."{table}"'
                    ).fetchall()
                    hits = {str(v) for row in rows for v in row} & raw
                    found += [f"{path.name}:{schema}.{table}: {v}" for v in sorted(hits)[:3]]
            continue
        content = path.read_bytes()
        found += [f"{path}: {value}" for value, data in encoded if data in content][:3]
    for i, text in enumerate(extra_texts):
        found += [f"output {i}: {value}" for value in raw if value in text][:3]
    return found


def _with_production_files(repo: ProjectRepo) -> None:
    """The files are production data, git-ignored: they sit next to the clone."""
    data = repo.path("data")
    shutil.copytree(FIXTURES / "fs_files" / "data", data)
    with duckdb.connect() as connection:
        connection.execute(
            f"COPY (SELECT * FROM read_csv('{data / 'signups.csv'}')) "
            f"TO '{data / 'signups.parquet'}' (FORMAT parquet)"
        )


@pytest.mark.slow
def test_file_sources_are_sampled_masked_and_environments_never_read_them(
    tmp_path: Path,
) -> None:
    repo = make_project_repo("fs_files", tmp_path)
    assert not repo.path("data").exists() and not repo.path(".dataops").exists()
    _with_production_files(repo)

    init = repo.run("init", "--json")
    assert init.returncode == 0, init.stderr
    proposal = json.loads(init.stdout)
    # A relationships test between models traces back through them to the file sources.
    assert proposal["unmapped_relationships"] == 0
    assert proposal["file_sources"] == [
        "crm.customers",
        "crm.orders",
        "support.tickets",
        "web.signups",
    ]
    repo.commit("dataops: config and lock file")

    sample = repo.run("sample", "--json")
    assert sample.returncode == 0, sample.stderr
    record = json.loads(sample.stdout)
    tables = {t["table"]: t for t in record["tables"]}
    assert sorted(tables) == ["crm.customers", "crm.orders", "support.tickets", "web.signups"]
    assert record["files"] == sorted(tables)
    assert all(t["orphans"] == 0 for t in tables.values())
    assert tables["crm.customers"]["production_rows"] == 200
    assert 0 < tables["crm.customers"]["sampled_rows"] < 200
    masked = {t: {c for c, _ in tables[t]["masked"]} for t in tables}
    assert {"full_name", "email", "phone"} <= masked["crm.customers"]
    assert "contact_email" in masked["support.tickets"]
    assert {"signup_email", "ip_address"} <= masked["web.signups"]
    text = repo.run("sample")
    assert "crm.customers" in text.stdout and "read from files" in text.stdout

    raw = _masked_raw_values(
        repo.path("data"),
        {
            "customers": masked["crm.customers"],
            "support_tickets": masked["support.tickets"],
            "signups": masked["web.signups"],
        },
    )
    assert len(raw) > 400
    # Production's files go away: environments build from the sample alone.
    shutil.move(repo.path("data"), tmp_path / "production-files-moved")

    build = repo.run("build")
    assert build.returncode == 0, build.stderr
    assert "production file(s) the sample was read from are gone" in build.stderr

    repo.checkout_new_branch("shout")
    repo.replace(
        "models/marts/customer_orders.sql", "c.full_name,", "upper(c.full_name) as full_name,"
    )
    repo.replace("models/marts/customer_orders.sql", "group by 1, 2, 3", "group by all")
    repo.commit("shout the names")
    review = repo.run("review", "--base", "main", "--json")
    assert review.returncode in (0, 3), review.stderr
    report = json.loads(review.stdout)
    assert report["sample"]["examples_masked"] is True
    (model,) = [m for m in report["models"] if m["name"] == "customer_orders"]
    examples = [e for c in model["diff"]["columns"] for e in c["examples"]]
    assert examples, "the change must produce examples to check"
    markdown = repo.run("report", "--format", "markdown")
    assert "Examples (masked sample values)" in markdown.stdout
    html = repo.run("report", "--format", "html")
    assert "examples (masked)" in html.stdout
    text = repo.run("report", env={"COLUMNS": "200"})
    assert "examples (masked)" in text.stdout

    for env in (repo.path(".dataops") / "envs").glob("*.duckdb"):
        with duckdb.connect(str(env), read_only=True) as connection:
            views = connection.execute(
                "SELECT sql FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        reading_files = [v for (v,) in views if any(w in v for w in ("read_", ".csv", ".parquet"))]
        assert views and not reading_files

    leaks = _leaks(
        repo.path(".dataops"),
        raw,
        [review.stdout, markdown.stdout, html.stdout, text.stdout, build.stdout],
    )
    assert leaks == []
    # The scan finds what it looks for: in text files and in DuckDB files.
    assert _leaks(tmp_path / "production-files-moved", raw, [])
    probe = tmp_path / "probe"
    probe.mkdir()
    with duckdb.connect(str(probe / "probe.duckdb")) as connection:
        connection.execute("CREATE TABLE t AS SELECT ? AS v", [sorted(raw)[0]])
    assert _leaks(probe, raw, [])


@pytest.mark.slow
def test_a_seed_only_project_is_told_and_its_examples_are_not_labelled_masked(
    tmp_path: Path,
) -> None:
    repo = make_project_repo("fs_seeds", tmp_path)
    assert not repo.path("prod.duckdb").exists()  # nothing to sample: not needed
    init = repo.run("init", "--json")
    assert init.returncode == 0, init.stderr
    data = json.loads(init.stdout)
    assert data["tables"] == 0 and data["seeds"] == ["people", "teams"]
    assert any("no sources" in n for n in data["notes"])
    assert any("not sampled or masked" in n for n in data["notes"])
    repo.commit("dataops: config")

    sample = repo.run("sample")
    assert sample.returncode == 0, sample.stderr
    assert "nothing to sample or mask" in sample.stdout
    assert "people, teams" in sample.stdout

    repo.checkout_new_branch("shout")
    repo.replace(
        "models/people_by_floor.sql", "p.display_name,", "upper(p.display_name) as display_name,"
    )
    repo.commit("shout the names")
    review = repo.run("review", "--base", "main", "--json")
    assert review.returncode in (0, 3), review.stderr
    report = json.loads(review.stdout)
    assert report["sample"]["examples_masked"] is False
    assert "seed" in report["sample"]["description"]
    markdown = repo.run("report", "--format", "markdown")
    assert "Examples (not masked)" in markdown.stdout
    assert "(masked" not in markdown.stdout
    text = repo.run("report", env={"COLUMNS": "200"})
    assert "examples (not masked)" in text.stdout
    html = repo.run("report", "--format", "html")
    assert "examples (not masked)" in html.stdout and "(masked" not in html.stdout
