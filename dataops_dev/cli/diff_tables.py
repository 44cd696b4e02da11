"""`dataops-dev diff-tables LEFT RIGHT`: diff two arbitrary relations in one database.

Used by scripts and by our own checks; the JSON shape is `TableDiff.to_dict()` (plus `profile`).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from dataops_dev.cli import AppContext, emit_json, format_options, resolve_format

_DSN = re.compile(r"^(postgres(ql)?://|.*\b(dbname|host|user)=)", re.IGNORECASE)


def open_engine(database: str) -> Any:
    """A Spark Connect address, a PostgreSQL DSN/conninfo, or a DuckDB file opened read-only."""
    from dataops_dev.errors import UsageError

    if database.startswith("sc://"):
        from dataops_dev.engines.spark import SparkEngine

        return SparkEngine(database)
    if _DSN.match(database):
        from dataops_dev.engines.postgres import PostgresEngine

        return PostgresEngine(database)
    path = Path(database)
    if not path.is_file():
        raise UsageError(
            f"database {database} is neither a DuckDB file nor a PostgreSQL DSN",
            "pass --database path/to/file.duckdb, --database postgresql://user@host/db or "
            "--database sc://host:15002 (Spark Connect)",
        )
    from dataops_dev.engines.duckdb import DuckDBEngine

    return DuckDBEngine(path, read_only=True)


_VALUE_STATS = ("min", "max", "quantiles", "top_values", "histogram")
"""Profile statistics that are values of the data (withheld with the examples)."""


def _dbname(dsn: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    try:
        return str(conninfo_to_dict(dsn).get("dbname") or "") or None
    except Exception:  # noqa: BLE001 - an unparsable DSN fails later, on connect
        return None


def production_like(app: AppContext, databases: list[str]) -> str | None:
    """Why values from `databases` may be raw production data, or None when every one is our
    own masked data (the sample, an environment, the warehouse sandbox).

    Production is the production target's database; anything that is neither the sample nor an
    environment is treated like it, since we cannot know what it holds."""
    from dataops_dev.errors import DataopsError

    safe_dirs: list[Path] = []
    production_file: Path | None = None
    sandbox: str | None = None
    try:
        loaded = app.loaded
        from dataops_dev.dbt.project import duckdb_path, load_profile_target
        from dataops_dev.environments import Environments
        from dataops_dev.sources import samples_dir

        safe_dirs = [Environments(loaded).root.resolve(), samples_dir(loaded).resolve()]
        output = load_profile_target(loaded)
        if output.get("type") == "duckdb":
            production_file = duckdb_path(loaded, output)
        elif loaded.config.backend.type == "warehouse":
            from dataops_dev.sources import sandbox_database

            sandbox = sandbox_database(loaded)
    except DataopsError:
        pass  # outside a project nothing is known to be ours
    for database in databases:
        if _DSN.match(database):
            if sandbox is None or _dbname(database) != sandbox:
                return f"{_dbname(database) or database} is not the dataops sandbox database"
            continue
        path = Path(database).expanduser().resolve()
        if production_file is not None and path == production_file:
            return f"{database} is the production target's database"
        if not any(path.is_relative_to(d) for d in safe_dirs):
            return f"{database} is neither the sample nor an environment"
    return None


def spark_production_like(app: AppContext, schemas: list[str]) -> str | None:
    """Why values of these Spark schemas may be raw production data, or None when every one is
    under the sandbox prefix (the sample and the environments; Spark has one catalog)."""
    from dataops_dev.errors import DataopsError
    from dataops_dev.spark_layout import owned, sandbox_prefix

    try:
        prefix = sandbox_prefix(app.loaded.config.backend.sandbox_database)
    except DataopsError:
        prefix = sandbox_prefix(None)  # outside a project: only the default sandbox is ours
    for schema in schemas:
        if not owned(prefix, schema):
            return f"schema {schema} is not under the dataops sandbox prefix {prefix}__"
    return None


def _why_withheld(
    app: AppContext, database: str, attached: dict[str, str], relations: tuple[str, str]
) -> str | None:
    if database.startswith("sc://"):
        from dataops_dev.engines.base import Relation

        return spark_production_like(app, [Relation.parse(r).schema for r in relations])
    return production_like(app, [database, *attached.values()])


def _withhold_values(data: Any) -> Any:
    """The profile diff without the statistics that are values of the data."""
    if isinstance(data, dict):
        return {
            k: (None if k in ("min", "max") else [] if k in _VALUE_STATS else _withhold_values(v))
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [_withhold_values(v) for v in data]
    return data


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    from dataops_dev.errors import UsageError

    pairs = {}
    for value in values:
        name, sep, setting = value.rpartition("=")
        if not sep or not name or not setting:
            raise UsageError(f"{option} expects COLUMN=VALUE, got {value!r}")
        pairs[name] = setting
    return pairs


def _number(text: str, option: str) -> float:
    from dataops_dev.errors import UsageError

    try:
        return float(text)
    except ValueError:
        raise UsageError(f"{option} expects a number, got {text!r}") from None


@click.command("diff-tables")
@click.argument("left")
@click.argument("right")
@click.option("--key", help="Key column(s), comma-separated; omit for a keyless diff.")
@click.option(
    "--database",
    required=True,
    help="DuckDB file (opened read-only), PostgreSQL DSN or Spark Connect address "
    "(sc://host:15002) holding both relations.",
)
@click.option("--examples", default=5, show_default=True, help="Example values per column.")
@click.option("--example-rows", default=20, show_default=True, help="Example rows overall.")
@click.option("--tolerance", multiple=True, metavar="COL=ABS", help="Absolute float tolerance.")
@click.option("--rel-tolerance", multiple=True, metavar="COL=REL", help="Relative float tolerance.")
@click.option(
    "--timestamp-precision",
    multiple=True,
    metavar="COL=UNIT",
    help="Truncate before comparing: day, hour, minute, second, millisecond, microsecond.",
)
@click.option("--cast", multiple=True, metavar="COL=TYPE", help="Compare COL after casting both.")
@click.option(
    "--attach",
    multiple=True,
    metavar="ALIAS=PATH",
    help="DuckDB: attach another file read-only, e.g. base=.dataops/envs/base.duckdb; then name "
    "relations ALIAS.schema.table.",
)
@click.option("--profile", "with_profile", is_flag=True, help="Add a profile diff.")
@click.option(
    "--show-values",
    is_flag=True,
    help="Show example values (and min/max/top values) even from a production-like database: "
    "they can be raw personal data. Default: withheld unless every database is the sample or "
    "an environment.",
)
@format_options()
@click.pass_obj
def diff_tables(
    app: AppContext,
    left: str,
    right: str,
    key: str | None,
    database: str,
    examples: int,
    example_rows: int,
    tolerance: tuple[str, ...],
    rel_tolerance: tuple[str, ...],
    timestamp_precision: tuple[str, ...],
    cast: tuple[str, ...],
    attach: tuple[str, ...],
    with_profile: bool,
    show_values: bool,
    output_format: str,
    as_json: bool,
) -> None:
    """Diff LEFT (base) and RIGHT (head), each `[database.]schema.table`.

    Example values are shown only from the sample and environments (or with --show-values):
    from production, or any database that is neither, they are withheld."""
    from dataops_dev.diffing import DiffOptions, Tolerance, diff_relations, profile_diff
    from dataops_dev.engines.base import Relation

    attached = _pairs(attach, "--attach")
    withheld = None if show_values else _why_withheld(app, database, attached, (left, right))
    if withheld is not None:
        # Never fetched: raw values do not even reach this process.
        examples = example_rows = 0

    absolute = {c: _number(v, "--tolerance") for c, v in _pairs(tolerance, "--tolerance").items()}
    relative = {
        c: _number(v, "--rel-tolerance")
        for c, v in _pairs(rel_tolerance, "--rel-tolerance").items()
    }
    options = DiffOptions(
        examples=examples,
        example_rows=example_rows,
        tolerance={
            c: Tolerance(abs=absolute.get(c, 0.0), rel=relative.get(c, 0.0))
            for c in {*absolute, *relative}
        },
        timestamp_precision=_pairs(timestamp_precision, "--timestamp-precision"),
        casts=_pairs(cast, "--cast"),
    )
    key_columns = [k.strip() for k in key.split(",") if k.strip()] if key else None
    with open_engine(database) as engine, app.reporter() as reporter:
        for alias, path in attached.items():
            if engine.dialect != "duckdb":
                from dataops_dev.errors import UsageError

                raise UsageError("--attach works with a DuckDB --database only")
            engine.attach(path, alias, read_only=True)
        result = diff_relations(
            engine,
            Relation.parse(left),
            Relation.parse(right),
            key=key_columns,
            options=options,
            reporter=reporter,
        )
        profile = (
            profile_diff(engine, Relation.parse(left), Relation.parse(right))
            if with_profile
            else None
        )
    data = result.to_dict()
    if profile is not None:
        data["profile"] = profile.to_dict()
    if withheld is not None:
        if "profile" in data:
            data["profile"] = _withhold_values(data["profile"])
        data["values_withheld"] = withheld
        click.echo(
            f"note: example values withheld: {withheld}; --show-values shows them "
            "(they can be raw production data)",
            err=True,
        )
    fmt = resolve_format(output_format, as_json)
    if fmt == "json":
        emit_json(data)
    elif fmt == "markdown":
        click.echo(render_markdown(data))
    else:
        click.echo(render_text(data))


def _row_summary(rows: dict[str, Any]) -> list[tuple[str, Any]]:
    return list(rows.items())


def render_text(data: dict[str, Any]) -> str:
    lines = [f"{data['left']} -> {data['right']}  ({data['mode']}, key: {data['key'] or '-'})"]
    schema = data["schema"]
    for label in ("added", "removed"):
        for column in schema[label]:
            lines.append(f"  column {label}: {column['name']} {column['type']}")
    for change in schema["type_changed"]:
        lines.append(
            f"  type changed: {change['name']} {change['left_type']} -> {change['right_type']}"
            f" (compared as {change['compared_as']})"
        )
    for rename in schema["renamed"]:
        lines.append(f"  renamed: {rename['from']} -> {rename['to']} ({rename['reason']})")
    lines.append("  rows: " + ", ".join(f"{k} {v}" for k, v in _row_summary(data["rows"])))
    keys = data.get("keys")
    if keys and any(
        keys[k] for k in ("null_left", "null_right", "duplicate_left", "duplicate_right")
    ):
        lines.append(
            f"  keys: null {keys['null_left']}/{keys['null_right']}, "
            f"duplicated {keys['duplicate_left']}/{keys['duplicate_right']} (left/right)"
        )
    for column in data["columns"]:
        if not column["changed"]:
            continue
        lines.append(
            f"  {column['name']}: {column['changed']} changed ({column['match_pct']}% match)"
        )
        for example in column["examples"]:
            lines.append(f"      {example['key']}: {example['before']!r} -> {example['after']!r}")
    if data.get("candidate_keys"):
        lines.append("  candidate keys: " + ", ".join("+".join(k) for k in data["candidate_keys"]))
    if data.get("values_withheld"):
        lines.append(f"  example values withheld ({data['values_withheld']})")
    return "\n".join(lines)


def render_markdown(data: dict[str, Any]) -> str:
    lines = [f"### `{data['left']}` → `{data['right']}`", ""]
    lines += ["| rows | " + " | ".join(data["rows"]) + " |"]
    lines += ["|---" * (len(data["rows"]) + 1) + "|"]
    lines += ["| | " + " | ".join(str(v) for v in data["rows"].values()) + " |", ""]
    changed = [c for c in data["columns"] if c["changed"]]
    if changed:
        lines += ["| column | changed | match % |", "|---|---|---|"]
        lines += [f"| `{c['name']}` | {c['changed']} | {c['match_pct']} |" for c in changed]
    return "\n".join(lines)
