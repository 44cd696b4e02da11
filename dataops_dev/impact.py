"""Change classification and impact radius: what a branch's models change, and which downstream
models, columns and exposures that touches — statically, from manifests and the working tree.

Each changed model is compared on the normalised AST (formatting, comments and commutative
rewrites are no change; a new column order is `metadata`) and classified `breaking | partial | additive | metadata |
unknown`; lineage edges then carry the change downstream (value- vs row-affected columns).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import pickle
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from dataops_dev.atomic import write_bytes_atomic
from dataops_dev.dbt.manifest import Manifest, Node
from dataops_dev.errors import GitError, ProjectError
from dataops_dev.lineage import (
    STAR,
    EdgeKind,
    LineageError,
    LineageRun,
    PreparedQuery,
    ProjectLineage,
    RelationIndex,
    RenderMemo,
    default_cache_dir,
    dialect_for,
    first_select,
    has_aggregate,
    is_outer_join,
    lineage_of_prepared,
    outer_join,
    output_index,
    output_names,
    prepare,
    referenced_nodes,
    seed_headers,
)
from dataops_dev.reporting import NULL_REPORTER, Reporter, Stopwatch, task

if TYPE_CHECKING:
    from sqlglot.optimizer.scope import Scope

    from dataops_dev.config import LoadedConfig
    from dataops_dev.dbt.project import DbtProject
    from dataops_dev.dbt.render import Renderer


class ChangeKind(str, Enum):
    BREAKING = "breaking"
    """Removed/renamed column, type change, or changed filter / join / grain."""
    PARTIAL = "partial"
    """Only the named output columns change value."""
    ADDITIVE = "additive"
    """Only new columns (or a new model)."""
    METADATA = "metadata"
    """Docs, tests or config that do not change the data."""
    UNKNOWN = "unknown"
    """Could not be decided statically (render or parse failure, unknown columns)."""


class ModelStatus(str, Enum):
    MODIFIED = "modified"
    ADDED = "added"
    REMOVED = "removed"


# --------------------------------------------------------------------------------------------
# Finding the base manifest


def find_base_manifest(
    loaded: LoadedConfig, explicit: Path | None, *, base_ref: str | None = None
) -> Path:
    """The production-state manifest to compare against, in order: `--base-manifest PATH`,
    config `production.manifest`, `<state_dir>/production/manifest.json`, then the baseline
    environment of `base_ref` (`<state_dir>/envs/base_<sha12>/target/manifest.json`)."""
    if explicit is not None:
        if not explicit.is_file():
            raise ProjectError(f"no manifest at {explicit}", "pass the path of a manifest.json")
        return explicit
    configured = loaded.config.production.manifest
    if configured:
        path = Path(configured)
        path = path if path.is_absolute() else loaded.root / path
        if not path.is_file():
            raise ProjectError(
                f"production.manifest points to {path}, which does not exist",
                "fix `production.manifest` in dataops_dev.yml, or remove it to use the baseline that "
                "`dataops-dev review` builds",
            )
        return path
    production = loaded.state_dir / "production" / "manifest.json"
    if production.is_file() and base_ref is None:
        return production
    ref = base_ref or loaded.config.production.main_branch
    from dataops_dev import gitrepo

    try:
        commit = gitrepo.resolve(loaded.project_dir, ref)
    except GitError:  # no git or an unknown ref: fall through to the hint below
        commit = ""
    if commit:
        baseline = loaded.state_dir / "envs" / f"base_{commit[:12]}" / "target" / "manifest.json"
        if baseline.is_file():
            return baseline
    if production.is_file():
        return production
    raise ProjectError(
        "no production manifest to compare against",
        "run `dataops-dev review` once (it builds the main branch's baseline), set "
        "`production.manifest`, or pass --base-manifest PATH",
    )


@dataclass(frozen=True)
class BaseSide:
    """What `impact` compares the working tree with."""

    manifest: Path
    code_dir: Path | None
    """The base's project files (its git tree, exported), when a commit is known."""
    origin: str
    """How the manifest was found (for the user): given, found, or the ref parsed now / cached."""


def resolve_base(
    loaded: LoadedConfig,
    explicit: Path | None = None,
    *,
    base_ref: str | None = None,
    reporter: Reporter = NULL_REPORTER,
) -> BaseSide:
    """The base side of `impact`: a manifest given or already built (`find_base_manifest`),
    else the base ref's tree exported and parsed by dbt once (cached by tree id), so a fresh
    clone needs nothing prepared. A missing repository or unknown ref is a usage error."""
    from dataops_dev.dbt import parse

    commit: str | None = None
    if base_ref is not None:
        commit = parse.resolve_base_commit(loaded, base_ref)
    try:
        path = find_base_manifest(loaded, explicit, base_ref=base_ref)
    except ProjectError:
        if explicit is not None or loaded.config.production.manifest:
            raise
        path = None
    if path is None:
        if commit is None:
            commit = parse.resolve_base_commit(loaded, loaded.config.production.main_branch)
        parsed = parse.base_manifest(loaded, commit, reporter=reporter)
        how = "parsed once, cached" if parsed.reused else "parsed now"
        return BaseSide(
            parsed.path,
            parsed.code_dir,
            f"{base_ref or loaded.config.production.main_branch} at {commit[:12]}, {how}",
        )
    origin = "given with --base-manifest" if explicit is not None else "found"
    if commit is None and explicit is None:
        try:
            from dataops_dev import gitrepo

            commit = gitrepo.resolve(loaded.project_dir, loaded.config.production.main_branch)
        except GitError:
            commit = None  # production's manifest without a repository: no base files
    code_dir = None
    if commit is not None:
        try:
            code_dir = parse.export_ref(loaded, commit)
        except GitError:
            code_dir = None
    return BaseSide(path, code_dir, origin)


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class Impacted:
    models: tuple[str, ...] = ()
    """Downstream models whose data may change (value- or row-affected)."""
    columns: tuple[str, ...] = ()
    """`model.column` of every impacted downstream column."""
    row_affected_models: tuple[str, ...] = ()
    """Downstream models whose rows (not only values) may change: every column is impacted."""
    exposures: tuple[str, ...] = ()
    contracted_models: tuple[str, ...] = ()
    """Impacted downstream models with an enforced contract."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": list(self.models),
            "columns": list(self.columns),
            "row_affected_models": list(self.row_affected_models),
            "exposures": list(self.exposures),
            "contracted_models": list(self.contracted_models),
        }


@dataclass(frozen=True)
class ModelChange:
    name: str
    unique_id: str
    status: ModelStatus
    change: ChangeKind
    changed_columns: tuple[str, ...] = ()
    """Output columns whose values change (modified, added, or the new name of a rename)."""
    added_columns: tuple[str, ...] = ()
    removed_columns: tuple[str, ...] = ()
    renamed_columns: tuple[tuple[str, str], ...] = ()
    type_changed_columns: tuple[str, ...] = ()
    rows_affected: bool = False
    """A filter, join or grain changed: every column and row of the model may change."""
    reasons: tuple[str, ...] = ()
    contract_enforced: bool = False
    contract_broken: bool = False
    exposures: tuple[str, ...] = ()
    """Exposures that read this model directly or downstream."""
    impacted: Impacted = field(default_factory=Impacted)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unique_id": self.unique_id,
            "status": self.status.value,
            "change": self.change.value,
            "changed_columns": list(self.changed_columns),
            "added_columns": list(self.added_columns),
            "removed_columns": list(self.removed_columns),
            "renamed_columns": [{"from": a, "to": b} for a, b in self.renamed_columns],
            "type_changed_columns": list(self.type_changed_columns),
            "rows_affected": self.rows_affected,
            "reasons": list(self.reasons),
            "contract_enforced": self.contract_enforced,
            "contract_broken": self.contract_broken,
            "exposures": list(self.exposures),
            "impacted": self.impacted.to_dict(),
        }


@dataclass(frozen=True)
class ImpactReport:
    base_manifest: str
    dialect: str
    models: tuple[ModelChange, ...]
    unchanged: tuple[str, ...] = ()
    """Models whose files changed without changing the query (formatting, comments, order)."""
    diff_needed: tuple[str, ...] = ()
    """Models whose data may differ: the changed ones (except metadata) and impacted ones."""
    no_diff_needed: tuple[str, ...] = ()
    """Downstream models that are provably unaffected: no data diff needed."""
    timings: Mapping[str, float] = field(default_factory=dict)

    @property
    def has_breaking(self) -> bool:
        return any(m.change is ChangeKind.BREAKING for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base_manifest": self.base_manifest,
            "dialect": self.dialect,
            "models": [m.to_dict() for m in self.models],
            "unchanged": list(self.unchanged),
            "diff_needed": list(self.diff_needed),
            "no_diff_needed": list(self.no_diff_needed),
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


# --------------------------------------------------------------------------------------------
# SQL classification on normalised ASTs

_COMMUTATIVE: tuple[type[exp.Expr], ...] = (
    exp.Add,
    exp.Mul,
    exp.And,
    exp.Or,
    exp.EQ,
    exp.NEQ,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.BitwiseAnd,
    exp.BitwiseOr,
    exp.BitwiseXor,
)
_MIRRORED: dict[type[exp.Expr], str] = {exp.LT: "GT", exp.LTE: "GTE"}
_SKIPPED_ARGS = frozenset({"comments", "quoted"})


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=10).hexdigest()


class _Signer:
    """Canonical signatures of a query's output columns and of its row set.

    A column's signature is its expression with every column reference replaced by the
    signature of what it resolves to (through CTEs, subqueries, set operations) down to
    `node.column`, serialised with commutative operands sorted. Two queries that compute the
    same thing the same way get the same signatures whatever their formatting or aliases.
    """

    def __init__(self, prepared: PreparedQuery) -> None:
        self.p = prepared
        self.scope_of: dict[int, Scope] = {id(s.expression): s for s in prepared.root.traverse()}
        self.col_memo: dict[tuple[int, str | int], str] = {}
        self.row_memo: dict[int, str] = {}

    # columns ----------------------------------------------------------------------------

    def column(self, scope: Scope, column: str | int) -> str:
        key = (id(scope), column)
        found = self.col_memo.get(key)
        if found is None:
            self.col_memo[key] = "cycle"
            text = self._column(scope, column)
            found = text[2:] if text.startswith("c:") else _digest(text)
            self.col_memo[key] = found
        return found

    def _column(self, scope: Scope, column: str | int) -> str:
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            index = column if isinstance(column, int) else output_index(expression, column)
            if index is None:
                return f"missing:{column}"
            branches = [self.column(b, index) for b in scope.set_operation_scopes]
            return f"{type(expression).__name__}({','.join(sorted(branches))})"
        if scope.is_udtf:
            return "udtf:" + self.expr(scope, expression)
        if not isinstance(expression, exp.Select):
            return "opaque:" + expression.sql(comments=False)
        selects = expression.selects
        if isinstance(column, int):
            projection = selects[column] if column < len(selects) else None
        else:
            projection = next((s for s in selects if s.alias_or_name == column), None)
        if projection is None:
            return f"missing:{column}"
        return self.expr(scope, projection.unalias())

    def resolve(self, scope: Scope, column: exp.Column, *, in_join: bool = False) -> str:
        table = column.table
        current: Scope | None = scope
        while current is not None:
            source = current.sources.get(table) if table else None
            if source is not None:
                if isinstance(source, exp.Table):
                    base = f"{self.p.table_nodes.get(source.name, source.name)}.{column.name}"
                else:
                    base = self.column(source, column.name)
                if not in_join:
                    outer = self._outer_join(current, table)
                    if outer:
                        base = f"{base}@{outer}"
                return base
            current = current.parent
        return f"unresolved:{column.sql(comments=False)}"

    def _outer_join(self, scope: Scope, alias: str) -> str:
        """For a source that is LEFT/FULL-joined, the join's signature: its condition and the
        source's rows decide the column's values (but not the row count of the query)."""
        join = outer_join(scope, alias)
        if join is None:
            return ""
        return f"{(join.side or '').upper()}({self._join_sig(scope, join)})"

    def _join_sig(self, scope: Scope, join: exp.Join) -> str:
        source = scope.sources.get(join.alias_or_name)
        if isinstance(source, exp.Table):
            target = self.p.table_nodes.get(source.name, source.name)
        elif source is not None:
            target = "q" + self.rows(source)
        else:
            target = "?"
        return f"{target}|{self._join_condition(scope, join)}"

    # rows -------------------------------------------------------------------------------

    def rows(self, scope: Scope) -> str:
        found = self.row_memo.get(id(scope))
        if found is None:
            self.row_memo[id(scope)] = "cycle"
            found = _digest(self._rows(scope))
            self.row_memo[id(scope)] = found
        return found

    def _rows(self, scope: Scope) -> str:
        return "\n".join(sorted(self._row_atoms(scope)))

    def _row_atoms(self, scope: Scope) -> set[str]:
        """The row set of a scope as a set of atoms: inner sources, conditions (inner-join ON
        and WHERE conjuncts are interchangeable), grain, limits. Simple CTEs and subqueries in
        FROM are inlined, so moving a filter into a CTE is no change."""
        expression = scope.expression
        if isinstance(expression, exp.SetOperation):
            branches = sorted(self.rows(b) for b in scope.set_operation_scopes)
            distinct = bool(expression.args.get("distinct"))
            return {f"{type(expression).__name__}:{distinct}:{','.join(branches)}"}
        if scope.is_udtf:
            return {"udtf:" + self.expr(scope, expression)}
        if not isinstance(expression, exp.Select):
            return {"opaque:" + expression.sql(comments=False)}
        atoms: set[str] = set()
        from_ = expression.args.get("from") or expression.args.get("from_")
        if from_ is not None:
            atoms |= self._source_atoms(scope, from_.this)
        for join in expression.args.get("joins") or ():
            side = (join.side or "").upper()
            kind = (join.kind or "").upper()
            if kind in ("INNER", "OUTER"):
                kind = ""
            if side == "LEFT" and is_outer_join(join):
                # An outer join keeps every left row: it changes values, not the row set
                # (fan-out aside), so it is part of the joined columns' signatures instead.
                continue
            if not side and kind in ("", "CROSS"):
                atoms |= self._source_atoms(scope, join.this)
                on = join.args.get("on")
                if on is not None:
                    atoms |= {"cond:" + self.expr(scope, c) for c in _conjuncts(on)}
                if join.args.get("using"):
                    atoms.add("using:" + self._join_condition(scope, join))
                continue
            source = "".join(sorted(self._source_atoms(scope, join.this)))
            atoms.add(f"join:{side}:{kind}:{source}|{self._join_condition(scope, join)}")
        where = expression.args.get("where")
        if where is not None:
            atoms |= {"cond:" + self.expr(scope, c) for c in _conjuncts(where.this)}
        for arg in ("having", "qualify"):
            clause = expression.args.get(arg)
            if clause is not None:
                atoms |= {f"{arg}:" + self.expr(scope, c) for c in _conjuncts(clause.this)}
        group = expression.args.get("group")
        if group is not None:
            keys = sorted(self.expr(scope, g) for g in group.expressions)
            atoms.add("group:" + ",".join(keys))
        elif any(has_aggregate(s) for s in expression.selects):
            atoms.add("group:()")
        if expression.args.get("distinct"):
            width = len(expression.selects)
            atoms.add("distinct:" + ",".join(sorted(self.column(scope, i) for i in range(width))))
        if expression.args.get("limit") is not None or expression.args.get("offset") is not None:
            for arg in ("order", "limit", "offset"):
                clause = expression.args.get(arg)
                if clause is not None:
                    atoms.add(f"{arg}:" + self.expr(scope, clause))
        return atoms

    def _source_atoms(self, scope: Scope, node: exp.Expr) -> set[str]:
        source = scope.sources.get(node.alias_or_name)
        if isinstance(source, exp.Table):
            return {"src:" + self.p.table_nodes.get(source.name, source.name)}
        if source is not None:
            if _is_simple(source):
                return self._row_atoms(source)
            return {"src:q" + self.rows(source)}
        return {"src:" + self.expr(scope, node)}

    def _join_condition(self, scope: Scope, join: exp.Join) -> str:
        on = join.args.get("on")
        using = join.args.get("using")
        text = self.expr(scope, on, in_join=True) if on is not None else ""
        if using:
            text += "using:" + ",".join(sorted(u.name for u in using))
        return text

    # expressions ------------------------------------------------------------------------

    def expr(self, scope: Scope, node: exp.Expr, *, in_join: bool = False) -> str:
        return _canonical(node, lambda e: self._leaf(scope, e, in_join))

    def _leaf(self, scope: Scope, node: exp.Expr, in_join: bool) -> str | None:
        if isinstance(node, exp.Column) and not isinstance(node.this, exp.Star):
            return "c:" + self.resolve(scope, node, in_join=in_join)
        if isinstance(node, exp.Subquery | exp.Query):
            inner = node.this if isinstance(node, exp.Subquery) else node
            sub = self.scope_of.get(id(inner))
            if sub is not None:
                width = len(first_select(sub.expression).selects)
                cols = ",".join(self.column(sub, i) for i in range(width))
                return f"sub:{self.rows(sub)}:{cols}"
        return None


def _canonical(node: Any, leaf: Callable[[exp.Expr], str | None]) -> str:
    if isinstance(node, list):
        return "[" + ",".join(_canonical(n, leaf) for n in node) + "]"
    if not isinstance(node, exp.Expr):
        return repr(node)
    replaced = leaf(node)
    if replaced is not None:
        return replaced
    if isinstance(node, exp.Paren):
        return _canonical(node.this, leaf)
    cls = type(node)
    if isinstance(node, _COMMUTATIVE):
        operands: list[exp.Expr] = []
        stack: list[exp.Expr] = [node]
        while stack:
            current = stack.pop()
            while isinstance(current, exp.Paren):
                current = current.this
            if type(current) is cls:
                stack.extend((current.this, current.expression))
            else:
                operands.append(current)
        return f"{cls.__name__}(" + ",".join(sorted(_canonical(o, leaf) for o in operands)) + ")"
    if cls in _MIRRORED:
        # `a < b` is `b > a`: compare in one direction only.
        left = _canonical(node.this, leaf)
        right = _canonical(node.expression, leaf)
        return f"{_MIRRORED[cls]}({right},{left})"
    if cls in (exp.GT, exp.GTE):
        return f"{cls.__name__}({_canonical(node.this, leaf)},{_canonical(node.expression, leaf)})"
    if isinstance(node, exp.In) and node.expressions:
        items = sorted(_canonical(e, leaf) for e in node.expressions)
        return f"In({_canonical(node.this, leaf)},[{','.join(items)}],{node.args.get('not')!r})"
    parts = []
    for key in sorted(node.args):
        if key in _SKIPPED_ARGS:
            continue
        value = node.args[key]
        if value is None or value is False or value == []:
            continue
        parts.append(f"{key}={_canonical(value, leaf)}")
    return f"{cls.__name__}[{';'.join(parts)}]"


def _conjuncts(node: exp.Expr) -> list[exp.Expr]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.And):
        return [*_conjuncts(node.this), *_conjuncts(node.expression)]
    return [node]


def _is_simple(scope: Scope) -> bool:
    """A plain projection + filter of its sources: inlining its rows changes no meaning."""
    select = scope.expression
    if not isinstance(select, exp.Select) or scope.is_udtf:
        return False
    for arg in ("group", "having", "qualify", "distinct", "limit", "offset"):
        if select.args.get(arg) is not None:
            return False
    return not any(has_aggregate(s) for s in select.selects)


@dataclass(frozen=True)
class SqlChange:
    """How two versions of one model's SQL differ, column by column."""

    change: ChangeKind | None
    """None when the queries are equivalent."""
    changed_columns: tuple[str, ...] = ()
    added_columns: tuple[str, ...] = ()
    removed_columns: tuple[str, ...] = ()
    renamed_columns: tuple[tuple[str, str], ...] = ()
    type_changed_columns: tuple[str, ...] = ()
    rows_affected: bool = False
    reasons: tuple[str, ...] = ()
    base_columns: tuple[str, ...] | None = None
    head_columns: tuple[str, ...] | None = None


def _output(prepared: PreparedQuery) -> list[tuple[str, exp.Expr]] | None:
    """(output name, expression) per column; a repeated name gets the engine's suffix (`x_1`)."""
    select = first_select(prepared.root.expression)
    if any(projection.is_star for projection in select.selects):
        return None
    names = output_names(
        p.alias_or_name.lower() if prepared.lower_names else p.alias_or_name for p in select.selects
    )
    return [(name, p.unalias()) for name, p in zip(names, select.selects, strict=True)]


def _cast_type(node: exp.Expr) -> str | None:
    if isinstance(node, exp.Cast | exp.TryCast):
        to = node.args.get("to")
        return to.sql() if to is not None else None
    return None


def classify_prepared(base: PreparedQuery, head: PreparedQuery) -> SqlChange:
    """Compare two prepared versions of a model's query."""
    base_out, head_out = _output(base), _output(head)
    if base_out is None or head_out is None:
        same = _canonical(base.root.expression, lambda e: None) == _canonical(
            head.root.expression, lambda e: None
        )
        if same:
            return SqlChange(None)
        return SqlChange(
            ChangeKind.UNKNOWN, reasons=("output columns unknown (SELECT * over unknown columns)",)
        )
    bs, hs = _Signer(base), _Signer(head)
    base_sig = {name: bs.column(base.root, i) for i, (name, _) in enumerate(base_out)}
    head_sig = {name: hs.column(head.root, i) for i, (name, _) in enumerate(head_out)}
    rows_changed = bs.rows(base.root) != hs.rows(head.root)
    removed = [n for n in base_sig if n not in head_sig]
    added = [n for n in head_sig if n not in base_sig]
    renamed: list[tuple[str, str]] = []
    for old in list(removed):
        match = next((new for new in added if head_sig[new] == base_sig[old]), None)
        if match is not None:
            renamed.append((old, match))
            removed.remove(old)
            added.remove(match)
    modified = [n for n in head_sig if n in base_sig and head_sig[n] != base_sig[n]]
    base_expr, head_expr = dict(base_out), dict(head_out)
    type_changed = [
        n
        for n in modified
        if _cast_type(base_expr[n]) != _cast_type(head_expr[n])
        and (_cast_type(base_expr[n]) is not None or _cast_type(head_expr[n]) is not None)
    ]
    reasons: list[str] = []
    if removed:
        reasons.append("removed columns: " + ", ".join(removed))
    if renamed:
        reasons.append("renamed columns: " + ", ".join(f"{a} -> {b}" for a, b in renamed))
    if type_changed:
        reasons.append("type changed: " + ", ".join(type_changed))
    if rows_changed:
        reasons.append("filter, join or grain changed (rows may differ)")
    if modified:
        reasons.append("changed columns: " + ", ".join(modified))
    if added:
        reasons.append("new columns: " + ", ".join(added))
    kept_base = [n for n in base_sig if n in head_sig]
    kept_head = [n for n in head_sig if n in base_sig]
    reordered = kept_base != kept_head
    if reordered:
        # Same data, but `select *` downstream and positional consumers see a new order.
        reasons.append("column order changed: " + ", ".join(kept_head))
    if removed or renamed or type_changed or rows_changed:
        kind: ChangeKind | None = ChangeKind.BREAKING
    elif modified:
        kind = ChangeKind.PARTIAL
    elif added:
        kind = ChangeKind.ADDITIVE
    elif reordered:
        kind = ChangeKind.METADATA
    else:
        kind = None
    changed = [*modified, *added, *(new for _, new in renamed)]
    if rows_changed:
        changed = list(head_sig)
    return SqlChange(
        change=kind,
        changed_columns=tuple(changed),
        added_columns=tuple(added),
        removed_columns=tuple(removed),
        renamed_columns=tuple(renamed),
        type_changed_columns=tuple(type_changed),
        rows_affected=rows_changed,
        reasons=tuple(reasons),
        base_columns=tuple(base_sig),
        head_columns=tuple(head_sig),
    )


def classify_sql(
    base_sql: str,
    head_sql: str,
    dialect: str,
    *,
    relations: RelationIndex | None = None,
    base_schemas: Mapping[str, tuple[str, ...] | None] | None = None,
    head_schemas: Mapping[str, tuple[str, ...] | None] | None = None,
) -> SqlChange:
    """Classify the change from `base_sql` to `head_sql` (one model's compiled SQL)."""
    relations = relations or RelationIndex({}, {})
    try:
        base = prepare(base_sql, dialect, relations, base_schemas or {})
        head = prepare(head_sql, dialect, relations, head_schemas or base_schemas or {})
    except LineageError as exc:
        return SqlChange(ChangeKind.UNKNOWN, reasons=(str(exc),))
    return classify_prepared(base, head)


# --------------------------------------------------------------------------------------------
# Metadata (YAML) comparison


@dataclass(frozen=True)
class ModelMeta:
    """What a model's YAML says, reduced to what can change without changing the data."""

    description: str | None
    columns: Mapping[str, tuple[str | None, str | None]]
    """column -> (description, data_type)."""
    tests: frozenset[tuple[str, str]]
    """(column or "", test name)."""
    contract_enforced: bool


def _doc_text(text: Any) -> str | None:
    # `{{ doc('x') }}` is rendered in the manifest and not here: do not compare those.
    if text is None:
        return ""
    text = str(text).strip()
    return None if "{{" in text else text


def meta_from_manifest(manifest: Manifest, node: Node) -> ModelMeta:
    tests = frozenset((t.column_name or "", t.test_name) for t in manifest.tests_on(node.unique_id))
    columns = {
        name.lower(): (_doc_text(info.description), (info.data_type or "").lower() or None)
        for name, info in node.columns.items()
    }
    return ModelMeta(
        description=_doc_text(node.raw.get("description")),
        columns=columns,
        tests=tests,
        contract_enforced=node.contract_enforced,
    )


def _test_names(entries: Any, column: str) -> set[tuple[str, str]]:
    names = set()
    for entry in entries or ():
        if isinstance(entry, str):
            names.add((column, entry.split(".")[-1]))
        elif isinstance(entry, Mapping) and entry:
            key = next(iter(entry))
            if key in ("name", "test_name") and len(entry) > 1:
                key = str(entry.get("test_name") or entry.get("name"))
            names.add((column, str(key).split(".")[-1]))
    return names


def meta_from_yaml(entry: Mapping[str, Any]) -> ModelMeta:
    tests = _test_names(entry.get("data_tests") or entry.get("tests"), "")
    columns = {}
    for col in entry.get("columns") or ():
        if not isinstance(col, Mapping) or "name" not in col:
            continue
        name = str(col["name"]).lower()
        data_type = col.get("data_type")
        columns[name] = (
            _doc_text(col.get("description")),
            str(data_type).lower() if data_type else None,
        )
        tests |= _test_names(col.get("data_tests") or col.get("tests"), name)
    config = entry.get("config") or {}
    contract = config.get("contract") or entry.get("contract") or {}
    return ModelMeta(
        description=_doc_text(entry.get("description")),
        columns=columns,
        tests=frozenset(tests),
        contract_enforced=bool(contract.get("enforced"))
        if isinstance(contract, Mapping)
        else False,
    )


def _rendered_only(data_type: str | None) -> bool:
    """A data_type that is Jinja in the YAML: only dbt's manifest has its value."""
    return data_type is not None and ("{{" in data_type or "{%" in data_type)


def _meta_differences(base: ModelMeta, head: ModelMeta) -> tuple[list[str], list[str]]:
    """(metadata differences, contract-breaking differences)."""
    meta: list[str] = []
    breaking: list[str] = []
    if (
        base.description is not None
        and head.description is not None
        and base.description != head.description
    ):
        meta.append("description changed")
    for name in sorted(set(base.columns) | set(head.columns)):
        b, h = base.columns.get(name), head.columns.get(name)
        if b is None:
            meta.append(f"column {name} documented")
            continue
        if h is None:
            meta.append(f"column {name} no longer documented")
            if base.contract_enforced:
                breaking.append(f"contract column {name} removed")
            continue
        if b[0] is not None and h[0] is not None and b[0] != h[0]:
            meta.append(f"column {name} description changed")
        if _rendered_only(b[1]) or _rendered_only(h[1]):
            continue  # a Jinja type (e.g. per adapter) is known rendered on one side only
        if (b[1] or None) != (h[1] or None) and (b[1] or h[1]):
            if base.contract_enforced and head.contract_enforced:
                breaking.append(f"contract type of {name} changed: {b[1]} -> {h[1]}")
            else:
                meta.append(f"column {name} data_type changed")
    if base.tests != head.tests:
        added = sorted(head.tests - base.tests)
        removed = sorted(base.tests - head.tests)
        if added:
            meta.append("tests added: " + ", ".join(f"{t}({c})" if c else t for c, t in added))
        if removed:
            meta.append("tests removed: " + ", ".join(f"{t}({c})" if c else t for c, t in removed))
    if base.contract_enforced and not head.contract_enforced:
        breaking.append("contract enforcement removed")
    elif head.contract_enforced and not base.contract_enforced:
        meta.append("contract enforced")
    return meta, breaking


def read_yaml_models(
    project_dir: Path, model_paths: Iterable[str], *, cache_file: Path | None = None
) -> dict[str, ModelMeta]:
    """Model entries of every schema YAML file under the model paths, by model name.

    With `cache_file`, each file's parsed entries are kept by (size, mtime): YAML parsing is
    the slowest part of a warm `impact` on a large project.
    """
    import pickle

    cache = _read_yaml_cache(cache_file) if cache_file is not None else {}
    fresh: dict[str, tuple[tuple[int, int], dict[str, ModelMeta]]] = {}
    result: dict[str, ModelMeta] = {}
    for folder in model_paths:
        base = project_dir / folder
        if not base.is_dir():
            continue
        for path in sorted([*base.rglob("*.yml"), *base.rglob("*.yaml")]):
            stat = path.stat()
            stamp = (stat.st_size, stat.st_mtime_ns)
            hit = cache.get(str(path))
            entries = hit[1] if hit is not None and hit[0] == stamp else _yaml_models(path)
            fresh[str(path)] = (stamp, entries)
            result.update(entries)
    if cache_file is not None and fresh != cache:
        write_bytes_atomic(cache_file, pickle.dumps(fresh))
    return result


class _CacheUnpickler(pickle.Unpickler):
    """Unpickles only what `read_yaml_models` writes: a corrupt or planted cache file can
    fail to load, never run code."""

    ALLOWED = frozenset(
        {("dataops_dev.impact", "ModelMeta"), ("builtins", "frozenset"), ("builtins", "set")}
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"{module}.{name} is not allowed in the cache")
        return super().find_class(module, name)


def _read_yaml_cache(
    cache_file: Path,
) -> dict[str, tuple[tuple[int, int], dict[str, ModelMeta]]]:
    """The YAML cache, or empty (rebuilt) when it is missing, corrupt or not of this shape."""
    import io

    try:
        data = _CacheUnpickler(io.BytesIO(cache_file.read_bytes())).load()
    except Exception:  # noqa: BLE001 - any unreadable cache is rebuilt
        return {}
    if not isinstance(data, dict):
        return {}
    for path, entry in data.items():
        if not (
            isinstance(path, str)
            and isinstance(entry, tuple)
            and len(entry) == 2
            and isinstance(entry[0], tuple)
            and isinstance(entry[1], dict)
            and all(isinstance(m, ModelMeta) for m in entry[1].values())
        ):
            return {}
    return data


def _yaml_models(path: Path) -> dict[str, ModelMeta]:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    except yaml.YAMLError as exc:
        raise ProjectError(f"{path} is not valid YAML: {exc}") from exc
    entries: dict[str, ModelMeta] = {}
    if isinstance(data, Mapping):
        for entry in data.get("models") or ():
            if isinstance(entry, Mapping) and entry.get("name"):
                entries[str(entry["name"])] = meta_from_yaml(entry)
    return entries


# --------------------------------------------------------------------------------------------
# The working tree


@dataclass(frozen=True)
class WorkingModel:
    name: str
    path: str
    """Relative to the project directory, with forward slashes (as dbt's original_file_path)."""
    raw_code: str
    checksum: str
    language: str


def scan_models(project_dir: Path, model_paths: Iterable[str]) -> dict[str, WorkingModel]:
    models: dict[str, WorkingModel] = {}
    for folder in model_paths:
        base = project_dir / folder
        if not base.is_dir():
            continue
        for root, _dirs, files in os.walk(base):
            for filename in files:
                if not filename.endswith((".sql", ".py")):
                    continue
                path = Path(root) / filename
                # dbt strips the file before hashing it (its `checksum`) and keeps it as raw_code.
                text = path.read_bytes().decode("utf-8").strip()
                name = filename.rsplit(".", 1)[0]
                models[name] = WorkingModel(
                    name=name,
                    path=path.relative_to(project_dir).as_posix(),
                    raw_code=text,
                    checksum=hashlib.sha256(text.encode("utf-8")).hexdigest(),
                    language="python" if filename.endswith(".py") else "sql",
                )
    return models


# --------------------------------------------------------------------------------------------
# Impact


def _exposure_names(manifest: Manifest) -> dict[str, tuple[str, ...]]:
    """model unique id -> names of exposures that depend on it directly."""
    result: dict[str, list[str]] = {}
    for exposure in manifest.exposures.values():
        for parent in (exposure.get("depends_on") or {}).get("nodes") or ():
            result.setdefault(parent, []).append(str(exposure.get("name")))
    return {k: tuple(sorted(v)) for k, v in result.items()}


def _unseen_changed_parent(
    manifest: Manifest,
    child: str,
    edges: Iterable[Any],
    row_models: set[str],
    value_cols: Mapping[str, set[str]],
) -> bool:
    """A changed parent the child depends on (manifest) that no lineage edge comes from."""
    node = manifest.get(child)
    if node is None:
        return False
    seen = {edge.source_node for edge in edges}
    return any(
        parent not in seen and (parent in row_models or value_cols.get(parent))
        for parent in node.depends_on_nodes
    )


def _reads_impacted(
    manifest: Manifest, child: str, row_models: set[str], value_cols: Mapping[str, set[str]]
) -> bool:
    node = manifest.get(child)
    parents = node.depends_on_nodes if node is not None else ()
    return any(p in row_models or value_cols.get(p) for p in parents)


def impact_radius(
    manifest: Manifest,
    lineage: ProjectLineage,
    changes: Mapping[str, tuple[set[str], bool]],
    *,
    exposures: Mapping[str, tuple[str, ...]] | None = None,
    missing: set[str] | None = None,
) -> dict[str, Impacted]:
    """Downstream impact of each changed model.

    `changes` maps a changed model to (its changed/removed columns, rows_affected). A value
    edge carries a changed column to its targets; a row edge (filter/join/group key) from a
    changed column, or any edge from a row-affected model, makes the whole target row-affected.
    `exposures` (model -> exposure names, `_exposure_names`) when the caller has it already.
    `missing`: collects the descendants read from an impacted parent whose lineage is not in
    `lineage` (the result is then incomplete: compute them and call again). Descendants without
    an impacted parent never change the result, so their lineage is not needed.
    """
    position = {n.unique_id: i for i, n in enumerate(manifest.dependency_order)}
    if exposures is None:
        exposures = _exposure_names(manifest)
    results: dict[str, Impacted] = {}
    for uid, (columns, rows) in changes.items():
        value_cols: dict[str, set[str]] = {uid: set(columns)}
        row_models: set[str] = {uid} if rows else set()
        descendants = sorted(
            (d for d in manifest.descendants([uid]) if d in position), key=position.__getitem__
        )
        for child in descendants:
            model = lineage.models.get(child)
            if model is None:
                if missing is not None and _reads_impacted(manifest, child, row_models, value_cols):
                    missing.add(child)
                continue
            if _unseen_changed_parent(manifest, child, model.edges, row_models, value_cols):
                # Lineage saw no edge from a changed parent (opaque SQL, a Python model):
                # all of the child may change.
                row_models.add(child)
                continue
            row_sources = set(model.row_sources) if model.row_sources is not None else None
            for edge in model.edges:
                parent = edge.source_node
                decides_rows = row_sources is None or parent in row_sources
                if parent in row_models:
                    if decides_rows:
                        row_models.add(child)
                        break
                    # Only LEFT-joined: its changed rows change the values read from it.
                    value_cols.setdefault(child, set()).add(edge.target_column)
                    continue
                changed = value_cols.get(parent)
                if not changed or (
                    edge.source_column not in changed and edge.source_column != STAR
                ):
                    continue
                if decides_rows and (
                    edge.kind.affects_rows
                    or (edge.kind is EdgeKind.UNKNOWN and edge.target_column == STAR)
                ):
                    row_models.add(child)
                    break
                value_cols.setdefault(child, set()).add(edge.target_column)
        impacted_models = sorted(
            {
                m
                for m in (*row_models, *value_cols)
                if m != uid and (m in row_models or value_cols[m])
            },
            key=position.__getitem__,
        )
        columns_out: list[str] = []
        for model_uid in impacted_models:
            name = lineage.names.get(model_uid, model_uid)
            if model_uid in row_models:
                cols = lineage.schemas.get(model_uid) or (STAR,)
            else:
                cols = tuple(sorted(value_cols.get(model_uid, ())))
            columns_out.extend(f"{name}.{c}" for c in cols)
        touched = {uid, *impacted_models}
        exposure_names = sorted({e for m in touched for e in exposures.get(m, ())})
        contracted = [
            lineage.names.get(m, m)
            for m in impacted_models
            if (node := manifest.get(m)) is not None and node.contract_enforced
        ]
        results[uid] = Impacted(
            models=tuple(lineage.names.get(m, m) for m in impacted_models),
            columns=tuple(columns_out),
            row_affected_models=tuple(
                lineage.names.get(m, m) for m in impacted_models if m in row_models
            ),
            exposures=tuple(exposure_names),
            contracted_models=tuple(contracted),
        )
    return results


# --------------------------------------------------------------------------------------------
# Stage 1: what the analysis reads


@dataclass(frozen=True)
class ImpactInputs:
    """Everything one analysis reads: the base manifest and both sides' project files."""

    manifest: Manifest
    project_dir: Path
    project: DbtProject
    """The working tree's dbt_project.yml."""
    base_code_dir: Path | None
    """The base side's project files (an exported git tree), when known."""
    base_project: DbtProject | None
    dialect: str
    working: Mapping[str, WorkingModel]
    yaml_meta: Mapping[str, ModelMeta]
    base_models: Mapping[str, Node]
    """The base manifest's own models by name."""


def load_inputs(
    project_dir: Path,
    base_manifest_path: Path,
    *,
    base_code_dir: Path | None = None,
    state_dir: Path | None = None,
    watch: Stopwatch | None = None,
) -> ImpactInputs:
    from dataops_dev.dbt.project import read_project

    watch = watch or Stopwatch()
    with watch.measure("load_manifest"):
        manifest = Manifest.load(base_manifest_path)
        project = read_project(project_dir)
        base_project = read_project(base_code_dir) if base_code_dir is not None else None
    with watch.measure("scan"):
        working = scan_models(project_dir, project.model_paths)
        yaml_meta = read_yaml_models(
            project_dir,
            project.model_paths,
            cache_file=state_dir / "cache" / "impact_yaml.pickle" if state_dir else None,
        )
    return ImpactInputs(
        manifest=manifest,
        project_dir=project_dir,
        project=project,
        base_code_dir=base_code_dir,
        base_project=base_project,
        dialect=dialect_for(manifest),
        working=working,
        yaml_meta=yaml_meta,
        base_models={n.name: n for n in manifest.models()},
    )


# --------------------------------------------------------------------------------------------
# Stage 2: what changed — model files, YAML, macros, vars, seeds and files behind sources


@dataclass(frozen=True)
class DataChange:
    """A seed, an external source or a model whose input *file* changed: its SQL may be the
    same, its rows are not."""

    unique_id: str
    name: str
    reason: str
    removed_columns: tuple[str, ...] = ()
    added_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class ChangeSet:
    changed: tuple[str, ...] = ()
    """Models whose file changed."""
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    indirect: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Models whose file is the same but whose compiled SQL may not be (a macro or a var they
    use changed) -> why. Both sides are rendered; an equal query drops out."""
    data: tuple[DataChange, ...] = ()
    meta_diffs: Mapping[str, tuple[list[str], list[str]]] = field(default_factory=dict)
    """(metadata differences, contract breaks) of every YAML-described model of the base."""
    meta_changed: tuple[str, ...] = ()
    """Models whose YAML changed but whose file did not."""


def file_changes(inputs: ImpactInputs) -> tuple[list[str], list[str], list[str]]:
    """(changed, added, removed) model names. Files are matched by name: a moved file is the
    same model."""
    changed: list[str] = []
    added: list[str] = []
    for name, model in sorted(inputs.working.items()):
        node = inputs.base_models.get(name)
        if node is None:
            added.append(name)
        elif node.checksum != model.checksum:
            changed.append(name)
    removed = sorted(n for n in inputs.base_models if n not in inputs.working)
    return changed, added, removed


def meta_changes(
    inputs: ImpactInputs, changed: Iterable[str]
) -> tuple[dict[str, tuple[list[str], list[str]]], list[str]]:
    meta_diffs: dict[str, tuple[list[str], list[str]]] = {}
    for name, meta in inputs.yaml_meta.items():
        node = inputs.base_models.get(name)
        if node is not None:
            base_meta = meta_from_manifest(inputs.manifest, node)
            meta_diffs[name] = ([], []) if base_meta == meta else _meta_differences(base_meta, meta)
    skip = set(changed)
    meta_changed = sorted(
        name for name, (diff, breaks) in meta_diffs.items() if name not in skip and (diff or breaks)
    )
    return meta_diffs, meta_changed


_MACRO_BLOCK = re.compile(
    r"\{%-?\s*(macro|test|materialization)\b.*?\{%-?\s*end\1\s*-?%\}", re.DOTALL
)


def _macro_blocks(path: Path) -> set[str]:
    """The text of every macro-like block in a macro file, as dbt keeps it (`macro_sql`)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return set()
    return {m.group(0) for m in _MACRO_BLOCK.finditer(text)}


def _own_macros(inputs: ImpactInputs) -> dict[str, Mapping[str, Any]]:
    macros = inputs.manifest.data.get("macros") or {}
    return {
        uid: m
        for uid, m in macros.items()
        if isinstance(m, Mapping) and m.get("package_name") == inputs.project.name
    }


def _macro_callers(inputs: ImpactInputs, seeds: set[str]) -> set[str]:
    """`seeds` plus every macro that calls one of them, transitively; a dispatch
    implementation (`default__x`, `duckdb__x`) stands for its macro `x` too."""
    macros = inputs.manifest.data.get("macros") or {}
    by_name = {(m.get("package_name"), m.get("name")): uid for uid, m in macros.items()}
    result = set(seeds)
    for uid in seeds:
        macro = macros.get(uid) or {}
        name = str(macro.get("name") or "")
        if "__" in name:
            dispatched = by_name.get((macro.get("package_name"), name.split("__", 1)[1]))
            if dispatched:
                result.add(dispatched)
    grew = True
    while grew:
        grew = False
        for uid, macro in macros.items():
            if uid in result:
                continue
            calls = (macro.get("depends_on") or {}).get("macros") or ()
            if any(c in result for c in calls):
                result.add(uid)
                grew = True
    return result


def changed_macros(inputs: ImpactInputs) -> set[str]:
    """Unique ids of the project's macros whose text is no longer in its file (edited, moved
    or removed), plus every macro that calls one of them."""
    blocks: dict[str, set[str]] = {}
    edited: set[str] = set()
    for uid, macro in _own_macros(inputs).items():
        path = str(macro.get("original_file_path") or "")
        if path not in blocks:
            blocks[path] = _macro_blocks(inputs.project_dir / path)
        if str(macro.get("macro_sql") or "") not in blocks[path]:
            edited.add(uid)
    return _macro_callers(inputs, edited) if edited else set()


def macro_dependents(inputs: ImpactInputs) -> dict[str, str]:
    """Model name -> why, for models that call a changed macro (manifest `depends_on.macros`)."""
    changed = changed_macros(inputs)
    if not changed:
        return {}
    result: dict[str, str] = {}
    for name, node in inputs.base_models.items():
        hit = sorted(m.rsplit(".", 1)[-1] for m in node.depends_on_macros if m in changed)
        if hit:
            result[name] = "macro changed: " + ", ".join(hit)
    return result


def var_dependents(inputs: ImpactInputs) -> dict[str, str]:
    """Model name -> why, for models that read a var (directly or through a macro) when
    dbt_project.yml's `vars` changed."""
    if inputs.base_project is None:
        return {}
    base_vars, head_vars = dict(inputs.base_project.vars), dict(inputs.project.vars)
    if base_vars == head_vars:
        return {}
    names = sorted(k for k in {*base_vars, *head_vars} if base_vars.get(k) != head_vars.get(k))
    reading = {
        uid for uid, m in _own_macros(inputs).items() if "var(" in str(m.get("macro_sql") or "")
    }
    reading = _macro_callers(inputs, reading)
    why = "vars changed in dbt_project.yml: " + ", ".join(names)
    return {
        name: why
        for name, node in inputs.base_models.items()
        if "var(" in node.raw_code or any(m in reading for m in node.depends_on_macros)
    }


_FILE_READ = re.compile(
    r"read_(?:csv|csv_auto|parquet|json|json_auto|ndjson|ndjson_auto)\s*\(\s*\[?\s*"
    r"['\"]([^'\"]+)['\"]",
    re.IGNORECASE,
)
_FILE_LITERAL = re.compile(r"['\"]([^'\"]+\.(?:csv|tsv|parquet|json|ndjson|jsonl)(?:\.gz)?)['\"]")


def _external_locations(node: Node) -> list[str]:
    """Relative file paths behind a dbt-duckdb external source: `external_location` in its
    config or meta (`{name}` / `{identifier}` filled in), plain or as `read_csv('...')`."""
    raw = node.raw
    candidates = [
        (raw.get("config") or {}).get("external_location"),
        (raw.get("meta") or {}).get("external_location"),
        (raw.get("source_meta") or {}).get("external_location"),
    ]
    paths: list[str] = []
    for location in candidates:
        if not isinstance(location, str) or not location:
            continue
        text = location
        for key, value in (
            ("name", node.name),
            ("identifier", node.identifier),
            ("schema", node.schema or ""),
            ("source_name", node.source_name or ""),
        ):
            text = text.replace("{" + key + "}", value)
        quoted = _FILE_LITERAL.findall(text)
        paths.extend(quoted or ([text.strip()] if "(" not in text else []))
        break  # the first one set is the one dbt-duckdb uses
    return [p for p in paths if p and not Path(p).is_absolute() and "://" not in p]


def _file_state(root: Path, pattern: str) -> tuple[tuple[str, bytes], ...]:
    if any(ch in pattern for ch in "*?["):
        matches = sorted(p for p in root.glob(pattern) if p.is_file())
    else:
        matches = [root / pattern] if (root / pattern).is_file() else []
    return tuple((p.relative_to(root).as_posix(), p.read_bytes()) for p in matches)


def _csv_header(path: Path | None) -> tuple[str, ...]:
    import csv

    if path is None or not path.is_file():
        return ()
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            row = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return ()
    return tuple(c.strip().lower() for c in row)


def _seed_changed(inputs: ImpactInputs, node: Node) -> bool:
    relative = node.original_file_path
    head = inputs.project_dir / relative
    if not head.is_file():
        return False  # a removed seed: its models fail to build, which dbt reports
    if inputs.base_code_dir is not None:
        return _file_state(inputs.base_code_dir, relative) != _file_state(
            inputs.project_dir, relative
        )
    checksum = node.raw.get("checksum") or {}
    if checksum.get("name") != "sha256":
        return False
    # dbt hashes a seed's text stripped of surrounding whitespace (its trailing newline too).
    text = head.read_bytes().decode("utf-8", errors="replace").strip()
    return hashlib.sha256(text.encode()).hexdigest() != checksum.get("checksum")


def data_changes(inputs: ImpactInputs) -> list[DataChange]:
    """Seeds whose CSV changed, external sources whose file changed, and models that read a
    changed file directly (`read_csv('data/x.csv')`). Files are compared with the base's
    exported tree; seeds, without it, with the manifest's checksum."""
    result: list[DataChange] = []
    own = inputs.project.name
    for node in inputs.manifest.nodes.values():
        if node.resource_type != "seed" or node.package_name != own:
            continue
        if _seed_changed(inputs, node):
            base_file = (
                inputs.base_code_dir / node.original_file_path if inputs.base_code_dir else None
            )
            before = _csv_header(base_file)
            after = _csv_header(inputs.project_dir / node.original_file_path)
            result.append(
                DataChange(
                    node.unique_id,
                    node.name,
                    f"seed data changed ({node.original_file_path})",
                    removed_columns=tuple(c for c in before if after and c not in after),
                    added_columns=tuple(c for c in after if before and c not in before),
                )
            )
    if inputs.base_code_dir is None:
        return result
    base_dir = inputs.base_code_dir

    def changed_files(paths: Iterable[str]) -> list[str]:
        return [
            p
            for p in dict.fromkeys(paths)
            if _file_state(base_dir, p) != _file_state(inputs.project_dir, p)
        ]

    for source in inputs.manifest.sources.values():
        if source.package_name != own:
            continue
        files = changed_files(_external_locations(source))
        if files:
            reason = "external file changed: " + ", ".join(files)
            result.append(DataChange(source.unique_id, source.display_name, reason))
    for name, model in inputs.working.items():
        base = inputs.base_models.get(name)
        if base is None or base.checksum != model.checksum:
            continue  # new or edited models are classified from their SQL
        files = changed_files(_FILE_READ.findall(model.raw_code))
        if files:
            reason = "reads a changed file: " + ", ".join(files)
            result.append(DataChange(base.unique_id, name, reason))
    return result


def detect_changes(inputs: ImpactInputs) -> ChangeSet:
    """Every candidate change between the base and the working tree (stage 2)."""
    changed, added, removed = file_changes(inputs)
    meta_diffs, meta_changed = meta_changes(inputs, changed)
    data = data_changes(inputs)
    settled = {*changed, *removed, *(d.name for d in data)}
    indirect: dict[str, list[str]] = {}
    for found in (macro_dependents(inputs), var_dependents(inputs)):
        for name, why in found.items():
            if name not in settled:
                indirect.setdefault(name, []).append(why)
    return ChangeSet(
        changed=tuple(changed),
        added=tuple(added),
        removed=tuple(removed),
        indirect={k: tuple(v) for k, v in sorted(indirect.items())},
        data=tuple(data),
        meta_diffs=meta_diffs,
        meta_changed=tuple(n for n in meta_changed if n not in indirect),
    )


# --------------------------------------------------------------------------------------------
# Stage 3: both versions of each candidate, rendered


@dataclass
class _Version:
    """One side of a changed model: its SQL, or why there is none."""

    sql: str | None
    error: str | None


@dataclass(frozen=True)
class Versions:
    base: Mapping[str, _Version]
    head: Mapping[str, _Version]
    base_sql: Callable[[Node], str | None]
    """The base SQL of any model (for lineage): compiled code, else rendered."""


def _render_with(renderer: Renderer | None, name: str, raw_code: str, language: str) -> _Version:
    from dataops_dev.dbt.render import RenderError

    if language != "sql":
        return _Version(None, "Python model: its output cannot be analysed statically")
    if renderer is None:
        return _Version(None, "cannot render")
    try:
        return _Version(renderer.render(raw_code, model_name=name).sql, None)
    except RenderError as exc:
        return _Version(None, exc.message)


def make_renderers(
    inputs: ImpactInputs, changes: ChangeSet
) -> tuple[Renderer | None, Renderer | None]:
    """(base, head) renderers: the base side with the base's macros and vars when its code is
    known; the head side with the working tree's."""
    from dataops_dev.dbt.render import Renderer

    if not (changes.changed or changes.added or changes.indirect):
        return None, None
    project = inputs.project
    head = Renderer.for_project(
        inputs.project_dir,
        inputs.manifest,
        project_name=project.name,
        vars=project.vars,
        macro_paths=project.macro_paths,
        extra_models=changes.added,
    )
    base: Renderer | None = None
    if inputs.base_code_dir is not None and inputs.base_project is not None:
        base = Renderer.for_project(
            inputs.base_code_dir,
            inputs.manifest,
            project_name=inputs.base_project.name,
            vars=inputs.base_project.vars,
            macro_paths=inputs.base_project.macro_paths,
        )
    return base, head


def render_versions(
    inputs: ImpactInputs,
    changes: ChangeSet,
    base_renderer: Renderer | None,
    head_renderer: Renderer | None,
) -> Versions:
    def base_of(node: Node, *, indirect: bool) -> _Version:
        if base_renderer is not None:
            version = _render_with(base_renderer, node.name, node.raw_code, node.language)
        elif indirect and node.compiled_code:
            # Without the base's code, its compiled SQL is the only base that has the old
            # macros and vars in it.
            version = _Version(node.compiled_code, None)
        else:
            version = _render_with(head_renderer, node.name, node.raw_code, node.language)
        if version.sql is None and node.compiled_code and node.language == "sql":
            version = _Version(node.compiled_code, None)
        return version

    base: dict[str, _Version] = {}
    head: dict[str, _Version] = {}
    for name in (*changes.changed, *changes.indirect):
        node = inputs.base_models[name]
        model = inputs.working[name]
        head[name] = _render_with(head_renderer, name, model.raw_code, model.language)
        base[name] = base_of(node, indirect=name in changes.indirect)
    for name in changes.added:
        model = inputs.working[name]
        head[name] = _render_with(head_renderer, name, model.raw_code, model.language)

    def base_sql(node: Node) -> str | None:
        if node.compiled_code:
            return node.compiled_code
        renderer = base_renderer or head_renderer
        if renderer is None:
            return None
        return _render_with(renderer, node.name, node.raw_code, node.language).sql

    return Versions(base, head, base_sql)


# --------------------------------------------------------------------------------------------
# Stage 4: classification


@dataclass
class Classified:
    """Stage 4's result: a change per model, and what the radius walk starts from."""

    pending: dict[str, ModelChange] = field(default_factory=dict)
    radius_input: dict[str, tuple[set[str], bool]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)
    head_schemas: dict[str, tuple[str, ...] | None] = field(default_factory=dict)


def _unknown(node: Node, name: str, reasons: Iterable[str]) -> ModelChange:
    return ModelChange(
        name,
        node.unique_id,
        ModelStatus.MODIFIED,
        ChangeKind.UNKNOWN,
        reasons=tuple(reasons),
        contract_enforced=node.contract_enforced,
        rows_affected=True,
    )


def classify_modified(
    inputs: ImpactInputs,
    changes: ChangeSet,
    versions: Versions,
    lineage: ProjectLineage,
    relations: RelationIndex,
    out: Classified,
) -> None:
    """Models whose file, macros or vars changed: their two queries compared."""
    order = {n.name: i for i, n in enumerate(inputs.manifest.dependency_order)}
    candidates = [*changes.changed, *changes.indirect]
    for name in sorted(candidates, key=lambda n: order.get(n, 0)):
        node = inputs.base_models[name]
        why = list(changes.indirect.get(name, ()))
        base_v, head_v = versions.base[name], versions.head[name]
        meta_diff, contract_breaks = changes.meta_diffs.get(name, ([], []))
        everything = (set(lineage.schemas.get(node.unique_id) or ()), True)
        if base_v.sql is None or head_v.sql is None:
            reason = head_v.error or base_v.error or "cannot render"
            out.pending[node.unique_id] = _unknown(node, name, [*why, reason])
            out.radius_input[node.unique_id] = everything
            continue
        try:
            base_p = prepare(base_v.sql, inputs.dialect, relations, lineage.schemas)
            head_p = prepare(head_v.sql, inputs.dialect, relations, out.head_schemas)
        except LineageError as exc:
            out.pending[node.unique_id] = _unknown(node, name, [*why, str(exc)])
            out.radius_input[node.unique_id] = everything
            continue
        sql_change = classify_prepared(base_p, head_p)
        out.head_schemas[node.unique_id] = lineage_of_prepared(node.unique_id, head_p).columns
        kind = sql_change.change
        reasons = [*why, *sql_change.reasons]
        if contract_breaks:
            reasons.extend(contract_breaks)
            kind = ChangeKind.BREAKING
        if kind is None:
            if meta_diff:
                kind = ChangeKind.METADATA
                reasons.extend(meta_diff)
            elif name in changes.indirect:
                continue  # a macro or var changed, this model's query did not
            else:
                out.unchanged.append(name)
                continue
        elif meta_diff:
            reasons.extend(meta_diff)
        contract_broken = node.contract_enforced and (
            bool(contract_breaks)
            or bool(sql_change.removed_columns or sql_change.renamed_columns)
            or bool(sql_change.type_changed_columns)
        )
        affected = set(sql_change.changed_columns) | set(sql_change.removed_columns)
        affected |= {old for old, _ in sql_change.renamed_columns}
        if kind in (ChangeKind.BREAKING, ChangeKind.PARTIAL, ChangeKind.UNKNOWN):
            out.radius_input[node.unique_id] = (affected, sql_change.rows_affected)
        out.pending[node.unique_id] = ModelChange(
            name=name,
            unique_id=node.unique_id,
            status=ModelStatus.MODIFIED,
            change=kind,
            changed_columns=sql_change.changed_columns,
            added_columns=sql_change.added_columns,
            removed_columns=sql_change.removed_columns,
            renamed_columns=sql_change.renamed_columns,
            type_changed_columns=sql_change.type_changed_columns,
            rows_affected=sql_change.rows_affected,
            reasons=tuple(reasons),
            contract_enforced=node.contract_enforced,
            contract_broken=contract_broken,
        )


def classify_meta_only(inputs: ImpactInputs, changes: ChangeSet, out: Classified) -> None:
    for name in changes.meta_changed:
        node = inputs.base_models[name]
        meta_diff, contract_breaks = changes.meta_diffs[name]
        kind = ChangeKind.BREAKING if contract_breaks else ChangeKind.METADATA
        out.pending[node.unique_id] = ModelChange(
            name,
            node.unique_id,
            ModelStatus.MODIFIED,
            kind,
            reasons=tuple(contract_breaks + meta_diff),
            contract_enforced=node.contract_enforced,
            contract_broken=bool(contract_breaks),
        )


def classify_removed(
    inputs: ImpactInputs, changes: ChangeSet, lineage: ProjectLineage, out: Classified
) -> None:
    for name in changes.removed:
        node = inputs.base_models[name]
        columns = lineage.schemas.get(node.unique_id) or ()
        out.pending[node.unique_id] = ModelChange(
            name,
            node.unique_id,
            ModelStatus.REMOVED,
            ChangeKind.BREAKING,
            removed_columns=tuple(columns),
            rows_affected=True,
            reasons=("model removed",),
            contract_enforced=node.contract_enforced,
            contract_broken=node.contract_enforced,
        )
        out.radius_input[node.unique_id] = (set(columns), True)


def classify_added(
    inputs: ImpactInputs,
    changes: ChangeSet,
    versions: Versions,
    relations: RelationIndex,
    out: Classified,
) -> None:
    for name in changes.added:
        head_v = versions.head[name]
        uid = f"model.{inputs.project.name}.{name}"
        columns: tuple[str, ...] = ()
        reasons = ["new model"]
        if head_v.sql is not None:
            try:
                head_p = prepare(head_v.sql, inputs.dialect, relations, out.head_schemas)
                columns = tuple(lineage_of_prepared(uid, head_p).columns or ())
            except LineageError as exc:
                reasons.append(str(exc))
        out.pending[uid] = ModelChange(
            name,
            uid,
            ModelStatus.ADDED,
            ChangeKind.ADDITIVE,
            changed_columns=columns,
            added_columns=columns,
            reasons=tuple(reasons),
        )


def classify_data(
    inputs: ImpactInputs, changes: ChangeSet, lineage: ProjectLineage, out: Classified
) -> None:
    """Seeds, sources and models whose input file changed: their rows may change, which only a
    data diff tells (`unknown`), or `breaking` when the seed lost columns."""
    for data in changes.data:
        node = inputs.manifest.get(data.unique_id)
        columns = lineage.schemas.get(data.unique_id) or ()
        reasons = [data.reason, "rows may differ: only a data diff tells"]
        kind = ChangeKind.UNKNOWN
        if data.removed_columns:
            kind = ChangeKind.BREAKING
            reasons.append("removed columns: " + ", ".join(data.removed_columns))
        if data.added_columns:
            reasons.append("new columns: " + ", ".join(data.added_columns))
        out.pending[data.unique_id] = ModelChange(
            data.name,
            data.unique_id,
            ModelStatus.MODIFIED,
            kind,
            changed_columns=tuple(columns),
            added_columns=data.added_columns,
            removed_columns=data.removed_columns,
            rows_affected=True,
            reasons=tuple(reasons),
            contract_enforced=bool(node and node.contract_enforced),
        )
        out.radius_input[data.unique_id] = ({*columns, *data.removed_columns}, True)


# --------------------------------------------------------------------------------------------
# Stages 5 and 6: the impact radius, and the report


def radius_of(
    inputs: ImpactInputs,
    run: LineageRun,
    classified: Classified,
    versions: Versions,
    relations: RelationIndex,
    exposures: Mapping[str, tuple[str, ...]],
) -> dict[str, Impacted]:
    """The impact radius, computing the lineage of a descendant only once a parent of it is
    impacted (level by level): the rest of the downstream cannot change the result."""
    manifest = inputs.manifest
    while True:
        lineage = run.result()
        missing: set[str] = set()
        radius = impact_radius(
            manifest, lineage, classified.radius_input, exposures=exposures, missing=missing
        )
        if not missing:
            break
        run.ensure(missing, full_ancestors=False)
    origins = [
        uid
        for uid, change in classified.pending.items()
        if change.status is ModelStatus.MODIFIED
        and uid in classified.head_schemas
        and classified.head_schemas.get(uid) != lineage.schemas.get(uid)
    ]
    schemas = {**lineage.schemas, **classified.head_schemas}
    reshaped_by_origin = _propagate_column_sets(
        manifest, run, schemas, origins, versions.base_sql, inputs.dialect, relations
    )
    for origin, reshaped in reshaped_by_origin.items():
        radius[origin] = _with_reshaped(
            radius.get(origin, Impacted()), reshaped, manifest, lineage, exposures
        )
    return radius


def assemble_report(
    base_manifest_path: Path,
    inputs: ImpactInputs,
    classified: Classified,
    radius: Mapping[str, Impacted],
    exposures: Mapping[str, tuple[str, ...]],
    timings: Mapping[str, float],
) -> ImpactReport:
    manifest = inputs.manifest
    report_models: list[ModelChange] = []
    diff_needed: set[str] = set()
    no_diff: set[str] = set()
    for uid, change in classified.pending.items():
        impacted = radius.get(uid, Impacted())
        direct = exposures.get(uid, ())
        feeding = tuple(sorted(set(direct) | set(impacted.exposures)))
        report_models.append(dataclasses.replace(change, impacted=impacted, exposures=feeding))
        if change.change is not ChangeKind.METADATA and change.status is not ModelStatus.REMOVED:
            diff_needed.add(change.name)
        diff_needed.update(impacted.models)
        if change.status is ModelStatus.MODIFIED:
            for d in manifest.descendants([uid]):
                node = manifest.get(d)
                if node is not None and node.resource_type == "model":
                    no_diff.add(node.name)
    no_diff -= diff_needed
    no_diff -= {m.name for m in report_models}
    report_models.sort(key=lambda m: (order_key(m.change), m.name))
    return ImpactReport(
        base_manifest=str(base_manifest_path),
        dialect=inputs.dialect,
        models=tuple(report_models),
        unchanged=tuple(sorted(classified.unchanged)),
        diff_needed=tuple(sorted(diff_needed)),
        no_diff_needed=tuple(sorted(no_diff)),
        timings=dict(timings),
    )


def lineage_scope(
    inputs: ImpactInputs, changes: ChangeSet, versions: Versions, relations: RelationIndex
) -> set[str]:
    """The models whose lineage classification reads (their ancestors give their columns):
    every changed model and its children, and what either SQL of a changed or added model
    reads (its parents' columns qualify it), even where the manifest does not say it. The
    rest of the downstream is computed as the impact reaches it (`radius_of`)."""
    manifest = inputs.manifest
    starts = {
        inputs.base_models[name].unique_id
        for name in (*changes.changed, *changes.indirect, *changes.removed)
        if name in inputs.base_models
    }
    starts.update(data.unique_id for data in changes.data)
    models = {n.unique_id for n in manifest.dependency_order}
    scope = starts | {c for s in starts for c in manifest.child_map.get(s, ()) if c in models}
    for version in (*versions.head.values(), *versions.base.values()):
        if version.sql is not None:
            scope |= referenced_nodes(version.sql, inputs.dialect, relations)
    return scope


def analyze_impact(
    project_dir: Path,
    base_manifest_path: Path,
    *,
    state_dir: Path | None = None,
    reporter: Reporter = NULL_REPORTER,
    base_code_dir: Path | None = None,
) -> ImpactReport:
    """The static path: base manifest vs the working tree, without a database.

    `base_code_dir`: the base side's project files (the base ref's exported tree). With it,
    the base side renders with its own macros and vars, and changed seeds and files behind
    external sources are found by comparing the two trees.
    """
    watch = Stopwatch()
    started = time.perf_counter()
    inputs = load_inputs(
        project_dir,
        base_manifest_path,
        base_code_dir=base_code_dir,
        state_dir=state_dir,
        watch=watch,
    )
    with watch.measure("detect"):
        changes = detect_changes(inputs)
    with watch.measure("render_setup"):
        base_renderer, head_renderer = make_renderers(inputs, changes)
    with watch.measure("render"):
        versions = render_versions(inputs, changes, base_renderer, head_renderer)
    memo = RenderMemo.for_base(state_dir, base_manifest_path, base_code_dir)
    if memo is not None:
        versions = dataclasses.replace(versions, base_sql=memo.wrap(versions.base_sql))
    relations = RelationIndex.from_manifest(inputs.manifest)
    with contextlib.ExitStack() as stack:
        run = stack.enter_context(
            LineageRun(
                inputs.manifest,
                inputs.dialect,
                default_cache_dir(state_dir) if state_dir is not None else None,
                versions.base_sql,
                seed_headers(inputs.manifest, base_code_dir or project_dir),
                reporter,
                None,
            )
        )
        stack.enter_context(task(reporter, "lineage", "column lineage"))
        with watch.measure("lineage"):
            scope = lineage_scope(inputs, changes, versions, relations)
            if scope is None:  # as compute_lineage(only=None): every model, edges and all
                run.ensure(n.unique_id for n in inputs.manifest.dependency_order)
            else:
                run.ensure(scope, full_ancestors=False)
            lineage = run.result()
        exposures = _exposure_names(inputs.manifest)
        classified = Classified(head_schemas=dict(lineage.schemas))
        with watch.measure("classify"):
            classify_modified(inputs, changes, versions, lineage, relations, classified)
            classify_meta_only(inputs, changes, classified)
            classify_removed(inputs, changes, lineage, classified)
            classify_added(inputs, changes, versions, relations, classified)
            classify_data(inputs, changes, lineage, classified)
        with watch.measure("radius"):
            radius = radius_of(inputs, run, classified, versions, relations, exposures)
        lineage = run.result()
    if memo is not None:
        memo.save()
    watch.timings["total"] = time.perf_counter() - started
    watch.timings["lineage_computed"] = float(lineage.stats.computed)
    watch.timings["lineage_cached"] = float(lineage.stats.cached)
    return assemble_report(base_manifest_path, inputs, classified, radius, exposures, watch.timings)


def _propagate_column_sets(
    manifest: Manifest,
    run: LineageRun,
    head_schemas: dict[str, tuple[str, ...] | None],
    origins: Iterable[str],
    sql_for: Callable[[Node], str | None],
    dialect: str,
    relations: RelationIndex,
) -> dict[str, dict[str, tuple[str, ...]]]:
    """Children whose own output columns change because a parent's did (`SELECT *` chains):
    origin -> {child: columns added or removed there}. Walks only while column sets change;
    the base columns of the children (and of their parents) are computed as it reaches them."""
    order = {n.unique_id: i for i, n in enumerate(manifest.dependency_order)}
    result: dict[str, dict[str, tuple[str, ...]]] = {}
    for origin in origins:
        reshaped: dict[str, tuple[str, ...]] = {}
        frontier = {origin}
        while frontier:
            children = sorted(
                {
                    c
                    for parent in frontier
                    for c in manifest.child_map.get(parent, ())
                    if c in order and c not in reshaped
                },
                key=order.__getitem__,
            )
            run.ensure(children, edges=False)
            for uid, columns in run.schemas.items():
                head_schemas.setdefault(uid, columns)
            frontier = set()
            for child in children:
                node = manifest.get(child)
                sql = sql_for(node) if node is not None else None
                if node is None or sql is None:
                    continue
                try:
                    prepared = prepare(sql, dialect, relations, head_schemas)
                except LineageError:
                    continue
                columns = lineage_of_prepared(child, prepared).columns
                before = run.schemas.get(child)
                if columns is None or before is None or columns == before:
                    continue
                head_schemas[child] = columns
                changed = tuple(sorted(set(columns) ^ set(before)))
                if changed:
                    reshaped[child] = changed
                    frontier.add(child)
        if reshaped:
            result[origin] = reshaped
    return result


def _with_reshaped(
    impacted: Impacted,
    reshaped: Mapping[str, tuple[str, ...]],
    manifest: Manifest,
    lineage: ProjectLineage,
    exposures: Mapping[str, tuple[str, ...]],
) -> Impacted:
    names = {lineage.names.get(uid, uid): uid for uid in reshaped}
    models = list(impacted.models) + [n for n in names if n not in impacted.models]
    columns = list(impacted.columns)
    for name, uid in names.items():
        columns.extend(f"{name}.{c}" for c in reshaped[uid] if f"{name}.{c}" not in columns)
    found = set(impacted.exposures) | {e for uid in reshaped for e in exposures.get(uid, ())}
    contracted = list(impacted.contracted_models) + [
        name
        for name, uid in names.items()
        if name not in impacted.contracted_models
        and (node := manifest.get(uid)) is not None
        and node.contract_enforced
    ]
    return dataclasses.replace(
        impacted,
        models=tuple(models),
        columns=tuple(columns),
        exposures=tuple(sorted(found)),
        contracted_models=tuple(contracted),
    )


_ORDER = {
    ChangeKind.BREAKING: 0,
    ChangeKind.UNKNOWN: 1,
    ChangeKind.PARTIAL: 2,
    ChangeKind.ADDITIVE: 3,
    ChangeKind.METADATA: 4,
}


def order_key(kind: ChangeKind) -> int:
    return _ORDER[kind]
