"""The SQL check of the pre-commit hooks: a model renders (light Jinja) and parses with sqlglot in
the project's dialect; problems are located in the *source* file (line, column, snippet).

Rendering changes line numbers (a multi-line `{{ config(...) }}` renders to nothing), so parse
errors found in the rendered SQL are mapped back to the model file by aligning the two texts.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from dataops_dev.dbt.manifest import Manifest
from dataops_dev.dbt.render import RelationName, Renderer, RenderError


@dataclass(frozen=True)
class SqlProblem:
    """One problem in one model file, located in the source (1-based line and column)."""

    line: int
    column: int
    message: str
    snippet: str
    """The offending source line(s) with a caret under the column."""
    blocking: bool = True
    """False when the light renderer cannot check the model (a package macro, `run_query`, a
    var given on the command line): not the author's error, so it must not block a commit."""


class LenientRenderer(Renderer):
    """A Renderer that also knows sources declared in the working tree's YAML (a new source
    is not in the production manifest yet), and renders refs to working-tree models."""

    def __init__(
        self,
        *args: Any,
        yaml_sources: Mapping[tuple[str, str], tuple[str | None, str | None, str]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._yaml_sources = dict(yaml_sources or {})

    def source(self, source_name: str, table_name: str) -> RelationName:
        try:
            return super().source(source_name, table_name)
        except RenderError:
            declared = self._yaml_sources.get((source_name, table_name))
            if declared is None:
                raise
        return self._relation_text(*declared)


def yaml_sources(
    entries: Iterable[Mapping[str, Any]],
) -> dict[tuple[str, str], tuple[str | None, str | None, str]]:
    """(source, table) -> (database, schema, identifier) from `sources:` YAML entries."""
    found: dict[tuple[str, str], tuple[str | None, str | None, str]] = {}
    for source in entries:
        name = str(source.get("name") or "")
        if not name:
            continue
        schema = source.get("schema") or name
        database = source.get("database")
        for table in source.get("tables") or ():
            if isinstance(table, Mapping) and table.get("name"):
                identifier = str(table.get("identifier") or table["name"])
                found[(name, str(table["name"]))] = (
                    str(database) if database else None,
                    str(schema),
                    identifier,
                )
    return found


def check_model_sql(
    raw_code: str,
    *,
    model_name: str,
    renderer: Renderer,
    dialect: str | None,
    has_packages: bool = False,
) -> SqlProblem | None:
    """The first problem of a model's SQL (render, tokenize, parse), or None when it is fine."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    try:
        rendered = renderer.render(raw_code, model_name=model_name)
    except RenderError as exc:
        line, column = _render_error_location(raw_code, exc)
        return SqlProblem(
            line,
            column,
            _render_message(exc),
            snippet(raw_code, line, column),
            blocking=is_author_error(exc, has_packages=has_packages),
        )
    sql = rendered.sql
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect or None) if s is not None]
    except ParseError as exc:
        error = exc.errors[0] if exc.errors else {}
        highlight = str(error.get("highlight") or "")
        rline = int(error.get("line") or 1)
        # sqlglot's column is the end of the highlighted token: point at its start instead.
        rcol = max(1, int(error.get("col") or 1) - max(len(highlight), 1) + 1)
        line, column = map_location(sql, raw_code, rline, rcol)
        description = str(error.get("description") or str(exc).splitlines()[0])
        near = f" near {highlight!r}" if highlight else ""
        return SqlProblem(
            line, column, f"syntax error: {description}{near}", snippet(raw_code, line, column)
        )
    except TokenError as exc:
        rline, rcol = _token_error_position(sql, str(exc))
        line, column = map_location(sql, raw_code, rline, rcol)
        return SqlProblem(
            line,
            column,
            "syntax error: cannot tokenize (an unterminated string or quoted name?)",
            snippet(raw_code, line, column),
        )
    if not statements:
        return SqlProblem(1, 1, "the model renders to no SQL statement", snippet(raw_code, 1, 1))
    if len(statements) > 1:
        return SqlProblem(
            1, 1, "a model must be one query; found several statements", snippet(raw_code, 1, 1)
        )
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        kind = type(statement).__name__.upper()
        return SqlProblem(
            1, 1, f"a model must be a query (SELECT); this is {kind}", snippet(raw_code, 1, 1)
        )
    return None


def is_author_error(exc: RenderError, *, has_packages: bool) -> bool:
    """Would dbt reject this too (a Jinja syntax error, a ref to no model, an undeclared source,
    an undefined macro in a project without packages)? Otherwise the static renderer only lacks
    something dbt has (packages, a database, command-line vars) and the model is skipped."""
    if exc.author_error:
        return True
    if isinstance(exc.__cause__, jinja2.UndefinedError):
        return not has_packages
    return False


def _render_message(exc: RenderError) -> str:
    cause = exc.__cause__
    if isinstance(cause, jinja2.TemplateSyntaxError):
        return f"Jinja syntax error: {cause.message}"
    return f"cannot render: {exc.message}"


_NAMED = re.compile(r"(ref|source|var|env_var)\(\s*'([^']*)'(?:\s*,\s*'([^']*)')?")


def _render_error_location(raw_code: str, exc: RenderError) -> tuple[int, int]:
    cause = exc.__cause__
    if isinstance(cause, jinja2.TemplateSyntaxError) and cause.lineno:
        return cause.lineno, 1
    if isinstance(cause, jinja2.TemplateError):
        # An undefined name: point at its first use.
        match = re.search(r"'([A-Za-z_][A-Za-z_0-9]*)' is undefined", str(cause))
        if match:
            return _find(raw_code, re.compile(r"\b" + re.escape(match.group(1)) + r"\b"))
    # ref('x') / source('a', 'b') / var('v') named in the message: find that call in the source.
    for call in _NAMED.finditer(exc.message):
        func, first, second = call.group(1), call.group(2), call.group(3)
        names = [first] if second is None else [first, second]
        pattern = func + r"\(\s*" + r"\s*,\s*".join(f"[\"']{re.escape(n)}[\"']" for n in names)
        return _find(raw_code, re.compile(pattern))
    return 1, 1


def _find(text: str, pattern: re.Pattern[str]) -> tuple[int, int]:
    match = pattern.search(text)
    if match is None:
        return 1, 1
    before = text[: match.start()]
    line = before.count("\n") + 1
    return line, match.start() - (before.rfind("\n") + 1) + 1


def _token_error_position(sql: str, message: str) -> tuple[int, int]:
    """sqlglot's TokenError quotes the text up to the failure: find where that ends."""
    match = re.search(r"Error tokenizing '(.*)'", message, re.DOTALL)
    context = match.group(1) if match else ""
    index = sql.find(context) if context else -1
    if index < 0:
        return 1, 1
    # The failing token starts at the last quote of the context (unterminated string).
    end = index + len(context)
    quote = max(sql.rfind("'", index, end), sql.rfind('"', index, end))
    position = quote if quote >= 0 else end
    before = sql[:position]
    return before.count("\n") + 1, position - (before.rfind("\n") + 1) + 1


def map_location(rendered: str, raw: str, line: int, column: int) -> tuple[int, int]:
    """Map a (line, column) of the rendered SQL to the raw model source.

    Lines that render unchanged are aligned exactly (difflib on the line sequences); a line that
    changed (Jinja in it) maps to its aligned counterpart, keeping the column when the text
    around it matches, else to the start of the Jinja-bearing source line."""
    rendered_lines = rendered.split("\n")
    raw_lines = raw.split("\n")
    if not 1 <= line <= len(rendered_lines):
        return 1, 1
    index = line - 1
    matcher = difflib.SequenceMatcher(None, rendered_lines, raw_lines, autojunk=False)
    for tag, r1, r2, s1, s2 in matcher.get_opcodes():
        if not r1 <= index < r2:
            continue
        if tag == "equal":
            return s1 + (index - r1) + 1, column
        if s2 > s1:
            # A replaced block: take the proportional line inside the source block.
            offset = min(index - r1, s2 - s1 - 1)
            target = s1 + offset
            text = rendered_lines[index]
            token = text[column - 1 : column + 15].strip()
            found = raw_lines[target].find(token) if token else -1
            return target + 1, (found + 1 if found >= 0 else 1)
        # Inserted by rendering (a macro's output): blame the source line before it.
        return max(s1, 1), 1
    return min(line, len(raw_lines)), column


def snippet(raw: str, line: int, column: int, context: int = 1) -> str:
    """The source around `line` with line numbers and a caret under `column`."""
    lines = raw.split("\n")
    if not lines:
        return ""
    line = min(max(line, 1), len(lines))
    first = max(1, line - context)
    width = len(str(line))
    out = []
    for number in range(first, line + 1):
        out.append(f"{number:>{width}} | {lines[number - 1]}")
    out.append(f"{'':>{width}} | {' ' * max(column - 1, 0)}^")
    return "\n".join(out)


def renderer_for(
    project_dir: Path,
    *,
    project_name: str,
    vars: Mapping[str, Any],
    macro_paths: Iterable[str],
    adapter: str | None,
    manifest: Manifest | None,
    working_models: Iterable[str],
    sources: Mapping[tuple[str, str], tuple[str | None, str | None, str]],
) -> LenientRenderer:
    """A renderer over the production manifest (when there is one) plus the working tree."""
    return LenientRenderer.for_project(
        project_dir,
        manifest,
        project_name=project_name,
        vars=vars,
        macro_paths=macro_paths,
        adapter=adapter,
        extra_models=working_models,
        yaml_sources=sources,
    )
