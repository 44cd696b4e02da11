"""A light Jinja renderer for dbt models: `ref`, `source`, `config`, `var`, `is_incremental`, `this`,
the project's and installed packages' macros (with dbt's `test`, `materialization`, `docs` and
`snapshot` blocks, `call statement`, `adapter.dispatch`) and dbt's common cross-database macros,
without importing dbt.

`impact` uses it to compile models whose compiled SQL is stale, in milliseconds and without a
database; what needs a database (`run_query`) raises `RenderError`, and so does a model whose
macro file could not be loaded (the model is `unknown`, the rest render).
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.sandbox

from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.errors import ProjectError


class RenderError(ProjectError):
    """The model uses Jinja this renderer does not support; its change is `unknown`.

    `author_error` marks failures dbt would report too (a Jinja syntax error, a ref to no model,
    an undeclared source), as opposed to what only this renderer lacks (packages, a database)."""

    def __init__(self, message: str, hint: str | None = None, *, author_error: bool = False):
        super().__init__(message, hint)
        self.author_error = author_error


_NO_DEFAULT: Any = object()


# --------------------------------------------------------------------------------------------
# dbt's own block tags. dbt parses these with Jinja extensions; ours define the same shapes so a
# macro file with a custom generic test or materialization loads, and a snapshot renders its SQL.


class _TestTag(jinja2.ext.Extension):
    """`{% test name(model, column_name) %}...{% endtest %}` is the macro `test_name`."""

    tags = {"test"}  # noqa: RUF012 - jinja2's class attribute

    def parse(self, parser: Any) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        node = jinja2.nodes.Macro(lineno=lineno)
        node.name = "test_" + parser.parse_assign_target(name_only=True).name
        parser.parse_signature(node)
        node.body = parser.parse_statements(("name:endtest",), drop_needle=True)
        return node


class _MaterializationTag(jinja2.ext.Extension):
    """`{% materialization name, adapter='x' %}` (or `, default`) is the macro
    `materialization_name_x`; it only runs inside dbt, so its body is never called here."""

    tags = {"materialization"}  # noqa: RUF012 - jinja2's class attribute

    def parse(self, parser: Any) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        name = parser.parse_assign_target(name_only=True).name
        adapter = "default"
        while parser.stream.skip_if("comma"):
            target = parser.parse_assign_target(name_only=True).name
            if parser.stream.skip_if("assign"):
                value = parser.parse_expression()
                if target == "adapter" and isinstance(value, jinja2.nodes.Const):
                    adapter = str(value.value)
            elif target == "default":
                adapter = "default"
        node = jinja2.nodes.Macro(lineno=lineno)
        node.name = f"materialization_{name}_{adapter}"
        node.args = []
        node.defaults = []
        node.body = parser.parse_statements(("name:endmaterialization",), drop_needle=True)
        return node


class _DocsTag(jinja2.ext.Extension):
    """`{% docs name %}...{% enddocs %}` blocks are documentation: they render to nothing."""

    tags = {"docs"}  # noqa: RUF012 - jinja2's class attribute

    def parse(self, parser: Any) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        parser.parse_assign_target(name_only=True)
        parser.parse_statements(("name:enddocs",), drop_needle=True)
        return jinja2.nodes.Output([], lineno=lineno)


class _SnapshotTag(jinja2.ext.Extension):
    """`{% snapshot name %}SQL{% endsnapshot %}` renders as its SQL (the snapshot's query)."""

    tags = {"snapshot"}  # noqa: RUF012 - jinja2's class attribute

    def parse(self, parser: Any) -> list[jinja2.nodes.Node]:
        next(parser.stream)
        parser.parse_assign_target(name_only=True)
        body: list[jinja2.nodes.Node] = parser.parse_statements(
            ("name:endsnapshot",), drop_needle=True
        )
        return body


_DBT_TAGS = (_TestTag, _MaterializationTag, _DocsTag, _SnapshotTag)


class _Return(Exception):  # noqa: N818 - control flow, not an error
    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


class RelationName(str):
    """What `ref()`/`source()`/`this` return: renders as the relation, exposes its parts."""

    database: str | None
    schema: str | None
    identifier: str

    def __new__(
        cls, text: str, database: str | None, schema: str | None, identifier: str
    ) -> RelationName:
        value = super().__new__(cls, text)
        value.database = database
        value.schema = schema
        value.identifier = identifier
        return value

    @property
    def name(self) -> str:
        return self.identifier

    @property
    def table(self) -> str:
        return self.identifier

    def render(self) -> str:
        return str(self)


@dataclass(frozen=True)
class RenderedModel:
    sql: str
    depends_on: tuple[str, ...]
    """Unique ids of the refs and sources the model used (names prefixed `missing:` if unknown)."""
    config: Mapping[str, Any]


@dataclass(frozen=True)
class RenderContext:
    """What a render needs besides the model: the project and its relations."""

    project_name: str
    vars: Mapping[str, Any] = field(default_factory=dict)
    macro_files: tuple[tuple[str, str], ...] = ()
    package_macro_files: tuple[tuple[str, str, str], ...] = ()
    """(package, path, text) of the installed packages' macro files (`dbt_packages/`)."""
    """(path, text) of the project's macro files."""
    adapter: str = "duckdb"
    target_name: str = "prod"
    default_database: str | None = None
    default_schema: str | None = None


def _quoting_dialect(adapter: str) -> str:
    """The sqlglot dialect that quotes identifiers as the adapter does (ANSI when unknown)."""
    from sqlglot.dialects.dialect import Dialect

    from dataops_dev.dbt.dialects import ADAPTER_DIALECTS

    dialect = ADAPTER_DIALECTS.get(adapter, adapter)
    try:
        Dialect.get_or_raise(dialect)
    except ValueError:
        return "postgres"
    return dialect


# --------------------------------------------------------------------------------------------
# dbt's cross-database macros, rendered as each adapter does (only the commonly used ones).


def _cross_db(adapter: str) -> dict[str, Callable[..., str]]:
    pg = adapter in ("postgres", "redshift")
    sf = adapter == "snowflake"
    string_type = "varchar" if pg or sf or adapter == "duckdb" else "string"

    def dateadd(datepart: str, interval: Any, from_date_or_timestamp: str) -> str:
        if sf:
            return f"dateadd({datepart}, {interval}, {from_date_or_timestamp})"
        if pg:
            return f"{from_date_or_timestamp} + ((interval '1 {datepart}') * ({interval}))"
        return f"date_add({from_date_or_timestamp}, interval ({interval}) {datepart})"

    def datediff(first_date: str, second_date: str, datepart: str) -> str:
        if sf:
            return f"datediff({datepart}, {first_date}, {second_date})"
        if pg:
            return (
                f"date_part('{datepart}', ({second_date})::timestamp - ({first_date})::timestamp)"
            )
        return f"date_diff('{datepart}', {first_date}::timestamp, {second_date}::timestamp)"

    def listagg(
        measure: str,
        delimiter_text: str = "','",
        order_by_clause: str | None = None,
        limit_num: int | None = None,
    ) -> str:
        order = f" {order_by_clause}" if order_by_clause else ""
        if sf:
            return f"listagg({measure}, {delimiter_text}) within group ({order_by_clause or ''})"
        return f"string_agg({measure}, {delimiter_text}{order})"

    return {
        "date_trunc": lambda datepart, date: f"date_trunc('{datepart}', {date})",
        "dateadd": dateadd,
        "datediff": datediff,
        "last_day": lambda date, datepart: (
            f"cast(date_trunc('{datepart}', {date}) + interval '1 {datepart}'"
            f" - interval '1 day' as date)"
        ),
        "type_string": lambda: string_type,
        "type_int": lambda: "int" if sf else "integer",
        "type_bigint": lambda: "bigint",
        "type_numeric": lambda: "numeric(28,6)",
        "type_float": lambda: "float",
        "type_timestamp": lambda: "timestamp",
        "type_boolean": lambda: "boolean",
        "current_timestamp": lambda: "current_timestamp()" if sf else "now()",
        "concat": lambda fields: " || ".join(str(f) for f in fields),
        "hash": lambda field: f"md5(cast({field} as {string_type}))",
        "cast": lambda field, type: f"cast({field} as {type})",
        "safe_cast": lambda field, type: (
            f"cast({field} as {type})" if pg else f"try_cast({field} as {type})"
        ),
        "split_part": lambda string_text, delimiter_text, part_number: (
            f"split_part({string_text}, {delimiter_text}, {part_number})"
        ),
        "length": lambda expression: f"length({expression})",
        "any_value": lambda expression: f"min({expression})" if pg else f"any_value({expression})",
        "bool_or": lambda expression: (
            f"boolor_agg({expression})" if sf else f"bool_or({expression})"
        ),
        "listagg": listagg,
        "position": lambda substring_text, string_text: (
            f"position({substring_text} in {string_text})"
        ),
        "replace": lambda field, old_chars, new_chars: (
            f"replace({field}, {old_chars}, {new_chars})"
        ),
        "right": lambda string_text, length_expression: (
            f"right({string_text}, {length_expression})"
        ),
        "string_literal": lambda value: "'" + str(value).replace("'", "''") + "'",
        "escape_single_quotes": lambda expression: str(expression).replace("'", "''"),
        "cast_bool_to_text": lambda field: f"cast({field} as {string_type})",
        "except": lambda: "except",
        "intersect": lambda: "intersect",
    }


class _Namespace:
    def __init__(self, members: Mapping[str, Any]) -> None:
        self._members = dict(members)

    def __getattr__(self, name: str) -> Any:
        try:
            return self._members[name]
        except KeyError:
            raise RenderError(f"unsupported dbt macro dbt.{name}") from None


class _Config:
    """`config(...)` captures model config; `config.get(key, default)` reads it back."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> str:
        for arg in args:
            if isinstance(arg, Mapping):
                self.values.update(arg)
        self.values.update(kwargs)
        return ""

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def require(self, key: str) -> Any:
        if key not in self.values:
            raise RenderError(f"config {key!r} is required but not set")
        return self.values[key]


def _unsupported(name: str) -> Callable[..., Any]:
    def fail(*_args: Any, **_kwargs: Any) -> Any:
        raise RenderError(f"`{name}` needs a database; the static renderer cannot run it")

    return fail


class Renderer:
    """Renders model Jinja against a base manifest's relations (one instance per project)."""

    def __init__(
        self,
        context: RenderContext,
        manifest: Manifest | None = None,
        *,
        extra_models: Iterable[str] = (),
    ) -> None:
        self.context = context
        self.manifest = manifest
        self._refs: dict[str, Node] = {}
        self._sources: dict[tuple[str, str], Node] = {}
        if manifest is not None:
            for node in manifest.nodes.values():
                # The project's own node wins over a package's node of the same name.
                if node.resource_type in ("model", "seed", "snapshot") and (
                    node.name not in self._refs or node.package_name == context.project_name
                ):
                    self._refs[node.name] = node
            for node in manifest.sources.values():
                self._sources[(node.source_name or "", node.name)] = node
        self._extra = set(extra_models)
        self._dialect = _quoting_dialect(context.adapter)
        self.environment = jinja2.sandbox.SandboxedEnvironment(
            undefined=jinja2.StrictUndefined,
            extensions=[jinja2.ext.do, jinja2.ext.loopcontrols, *_DBT_TAGS],
        )
        self.macro_errors: dict[str, str] = {}
        """Macro files that could not be loaded (path -> why): models that call into them
        are `unknown`, the rest render."""
        self._used: list[str] = []
        self._config = _Config()
        self._this: RelationName | None = None
        self._namespace: dict[str, Any] = {}
        self._build_namespace()

    @classmethod
    def for_project(
        cls,
        project_dir: Path,
        manifest: Manifest | None,
        *,
        project_name: str,
        vars: Mapping[str, Any],
        macro_paths: Iterable[str],
        adapter: str | None = None,
        extra_models: Iterable[str] = (),
        **kwargs: Any,
    ) -> Self:
        """A renderer for the project in `project_dir` over `manifest`'s relations: its macros
        loaded, defaults (database, schema, adapter) taken from the manifest (`context_for`)."""
        context = context_for(
            project_dir,
            manifest,
            project_name=project_name,
            vars=vars,
            macro_paths=macro_paths,
            adapter=adapter,
        )
        return cls(context, manifest, extra_models=extra_models, **kwargs)

    # relations ------------------------------------------------------------------------------

    def quote(self, identifier: str) -> str:
        """One identifier quoted (and escaped) as the project's adapter quotes it."""
        from dataops_dev.engines.base import quote

        return quote(identifier, self._dialect)

    def _relation_text(
        self, database: str | None, schema: str | None, identifier: str
    ) -> RelationName:
        text = ".".join(self.quote(p) for p in (database, schema, identifier) if p)
        return RelationName(text, database, schema, identifier)

    def _relation(self, node: Node) -> RelationName:
        if node.relation_name:
            return RelationName(node.relation_name, node.database, node.schema, node.identifier)
        return self._relation_text(node.database, node.schema, node.identifier)

    def _new_relation(self, name: str) -> RelationName:
        context = self.context
        return self._relation_text(context.default_database, context.default_schema, name)

    def ref(self, *args: str, **kwargs: Any) -> RelationName:
        if not args:
            raise RenderError("ref() needs a model name")
        name = args[-1]
        node = self._refs.get(name)
        if node is not None:
            self._used.append(node.unique_id)
            return self._relation(node)
        if name in self._extra:
            self._used.append(f"model.{self.context.project_name}.{name}")
            return self._new_relation(name)
        raise RenderError(
            f"ref({name!r}) names no model in the base manifest or working tree",
            author_error=True,
        )

    def source(self, source_name: str, table_name: str) -> RelationName:
        node = self._sources.get((source_name, table_name))
        if node is None:
            raise RenderError(
                f"source({source_name!r}, {table_name!r}) is not declared", author_error=True
            )
        self._used.append(node.unique_id)
        return self._relation(node)

    def var(self, name: str, default: Any = _NO_DEFAULT) -> Any:
        values = self.context.vars
        scoped = values.get(self.context.project_name)
        if isinstance(scoped, Mapping) and name in scoped:
            return scoped[name]
        if name in values:
            return values[name]
        if default is not _NO_DEFAULT:
            return default  # `var('x', none)` is None in dbt, not an error
        raise RenderError(f"var({name!r}) is not defined in dbt_project.yml and has no default")

    # namespace ------------------------------------------------------------------------------

    def _build_namespace(self) -> None:
        adapter = self.context.adapter
        cross = _cross_db(adapter)
        target = _Namespace(
            {
                "name": self.context.target_name,
                "type": adapter,
                "schema": self.context.default_schema,
                "database": self.context.default_database,
                "threads": 1,
                "profile_name": self.context.project_name,
            }
        )

        def raise_return(value: Any = None) -> str:
            raise _Return(value)

        def env_var(name: str, default: str | None = None) -> str:
            if name in os.environ:
                return os.environ[name]
            if default is not None:
                return default
            raise RenderError(f"env_var({name!r}) is not set and has no default")

        def dispatch(name: str, macro_namespace: str | None = None) -> Callable[..., Any]:
            # dbt looks for the adapter's implementation, then its parents', then the default;
            # never `name` itself (the dispatching macro would call itself).
            parents = {"redshift": ("postgres",)}.get(adapter, ())
            candidates = [f"{a}__{name}" for a in (adapter, *parents)] + [f"default__{name}"]
            for candidate in candidates:
                if candidate in self._namespace and callable(self._namespace[candidate]):
                    return self._namespace[candidate]
            if name in cross:
                return cross[name]
            raise RenderError(f"adapter.dispatch({name!r}) finds no macro")

        ns = self._namespace
        ns.update(cross)  # dbt's own macros are global too; the project's macros override them
        ns.update(
            {
                "ref": self.ref,
                "source": self.source,
                "var": self.var,
                "env_var": env_var,
                "config": self._config,
                "is_incremental": lambda: False,
                "should_full_refresh": lambda: False,
                "target": target,
                "dbt": _Namespace(cross),
                "adapter": _Namespace(
                    {"dispatch": dispatch, "quote": lambda s: self.quote(str(s))}
                ),
                "return": raise_return,
                "log": lambda *a, **k: "",
                "print": lambda *a, **k: "",
                "exceptions": _Namespace(
                    {"raise_compiler_error": _raise_compiler, "warn": lambda *a, **k: ""}
                ),
                "execute": False,
                "flags": _Namespace({"FULL_REFRESH": False, "WHICH": "compile"}),
                "run_started_at": datetime.datetime(2000, 1, 1, tzinfo=datetime.UTC),
                "invocation_id": "00000000-0000-0000-0000-000000000000",
                "modules": _Namespace({"datetime": datetime, "re": re}),
                "run_query": _unsupported("run_query"),
                # As in dbt while `execute` is false: a statement runs nothing, has no result.
                "statement": _no_statement,
                "load_result": lambda *a, **k: None,
                "graph": _Namespace({"nodes": {}, "sources": {}}),
            }
        )
        self._load_packages(ns)
        for path, text in self.context.macro_files:
            try:
                template = self.environment.from_string(text)
                module = template.make_module(vars=ns, shared=True)
            except (jinja2.TemplateError, RenderError, _Return) as exc:
                # One bad file must not stop the others: models that need it become unknown.
                self.macro_errors[path] = str(getattr(exc, "message", None) or exc)
                continue
            for name in dir(module):
                macro = getattr(module, name)
                if isinstance(macro, jinja2.runtime.Macro):
                    ns[name] = _wrap_macro(macro)

    def _load_packages(self, ns: dict[str, Any]) -> None:
        """Package macros: callable as `package.name` and, where no builtin has the name,
        unqualified (a package's macros call each other so). The project's own load later and
        win."""
        packages: dict[str, dict[str, Any]] = {}
        for package, path, text in self.context.package_macro_files:
            try:
                module = self.environment.from_string(text).make_module(vars=ns, shared=True)
            except (jinja2.TemplateError, RenderError, _Return) as exc:
                self.macro_errors[path] = str(getattr(exc, "message", None) or exc)
                continue
            members = packages.setdefault(package, {})
            for name in dir(module):
                macro = getattr(module, name)
                if isinstance(macro, jinja2.runtime.Macro):
                    members[name] = _wrap_macro(macro)
        builtins = set(ns)
        for package, members in packages.items():
            for name, macro in members.items():
                if name not in builtins:
                    ns[name] = macro
            if package not in builtins:
                ns[package] = _Namespace(members)

    # rendering ------------------------------------------------------------------------------

    def render(self, raw_code: str, *, model_name: str) -> RenderedModel:
        self._used = []
        self._config = _Config()
        node = self._refs.get(model_name)
        self._this = self._relation(node) if node is not None else self._new_relation(model_name)
        self._namespace["config"] = self._config
        self._namespace["this"] = self._this
        self._namespace["model"] = _Namespace({"name": model_name})
        try:
            template = self.environment.from_string(raw_code)
            sql = template.render(self._namespace)
        except _Return as ret:
            sql = str(ret.value)
        except RenderError:
            raise
        except jinja2.UndefinedError as exc:
            raise RenderError(f"{model_name}: {exc.message}{self._undefined_hint()}") from exc
        except jinja2.TemplateError as exc:
            raise RenderError(
                f"{model_name}: cannot render: {exc}",
                author_error=isinstance(exc, jinja2.TemplateSyntaxError),
            ) from exc
        return RenderedModel(
            sql=sql, depends_on=tuple(dict.fromkeys(self._used)), config=dict(self._config.values)
        )

    def _undefined_hint(self) -> str:
        if self.macro_errors:
            broken = "; ".join(f"{p}: {e}" for p, e in sorted(self.macro_errors.items()))
            return f" (macro files that could not be loaded: {broken})"
        return " (a package macro?)"


def _no_statement(*_args: Any, **_kwargs: Any) -> str:
    return ""


def _raise_compiler(message: str, *_args: Any) -> str:
    raise RenderError(f"raise_compiler_error: {message}")


def _wrap_macro(macro: jinja2.runtime.Macro) -> Callable[..., Any]:
    """dbt macros may `{{ return(value) }}`: turn that into the call's result."""

    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return macro(*args, **kwargs)
        except _Return as ret:
            return ret.value

    return call


def macro_files(project_dir: Path, macro_paths: Iterable[str]) -> tuple[tuple[str, str], ...]:
    files = []
    for folder in macro_paths:
        base = project_dir / folder
        if base.is_dir():
            for path in sorted(base.rglob("*.sql")):
                files.append((str(path.relative_to(project_dir)), path.read_text(encoding="utf-8")))
    return tuple(files)


def package_macro_files(project_dir: Path) -> tuple[tuple[str, str, str], ...]:
    """(package, path, text) of every macro file of the packages installed in the project."""
    import yaml

    from dataops_dev.dbt.project import read_project

    try:
        install_path = read_project(project_dir).raw.get("packages-install-path")
    except ProjectError:
        return ()
    root = project_dir / str(install_path or "dbt_packages")
    if not root.is_dir():
        return ()
    files: list[tuple[str, str, str]] = []
    for package_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        try:
            data = yaml.safe_load((package_dir / "dbt_project.yml").read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError):
            continue
        if not isinstance(data, dict) or not data.get("name"):
            continue
        for folder in data.get("macro-paths") or ("macros",):
            for path in sorted((package_dir / str(folder)).rglob("*.sql")):
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError):
                    continue
                files.append((str(data["name"]), str(path.relative_to(project_dir)), text))
    return tuple(files)


def context_for(
    project_dir: Path,
    manifest: Manifest | None,
    *,
    project_name: str,
    vars: Mapping[str, Any],
    macro_paths: Iterable[str],
    adapter: str | None = None,
) -> RenderContext:
    """A RenderContext whose defaults (database, schema, adapter) come from the base manifest."""
    database = schema = None
    target_name = "prod"
    if manifest is not None:
        counts: dict[tuple[str | None, str | None], int] = {}
        for node in manifest.models():
            counts[(node.database, node.schema)] = counts.get((node.database, node.schema), 0) + 1
        if counts:
            database, schema = max(counts, key=lambda k: counts[k])
        metadata = manifest.data.get("metadata") or {}
        adapter = adapter or metadata.get("adapter_type")
        target_name = str((metadata.get("invocation_args") or {}).get("target") or target_name)
    return RenderContext(
        project_name=project_name,
        vars=vars,
        macro_files=macro_files(project_dir, macro_paths),
        package_macro_files=package_macro_files(project_dir),
        adapter=adapter or "duckdb",
        target_name=target_name,
        default_database=database,
        default_schema=schema,
    )
