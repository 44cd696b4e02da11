"""PII classification (dbt meta and tags, column names, value patterns) and masking transformers.

Every transformer is SQL built on sqlglot ASTs for DuckDB, PostgreSQL and Spark (byte-identical
output): a keyed SHA-256 in plain SQL, evaluated once per distinct value into mapping tables that
the sampler joins back. The sampling bucket is HMAC-SHA256.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from dataops_dev.errors import ConfigError
from dataops_dev.salt import DEFAULT_SALT_ENV, Salt  # noqa: F401 - re-exported

MASKING_VERSION = "mask-3"
"""Bumped whenever a transformer's output for the same salt and value changes.

mask-3: transformers hash with `keyed_sql` (one SHA-256 over key || value, 4x cheaper than
HMAC's four compression calls) instead of HMAC-SHA256."""


# --------------------------------------------------------------------------------------------
# Dialect templates: parsed once by sqlglot, placeholders replaced by AST nodes.

_TEMPLATES: dict[str, dict[str, str]] = {
    "duckdb": {
        "hmac": "sha256(unhex(:o) || unhex(sha256(unhex(:i) || encode(:v))))",
        "keyed": "sha256(unhex(:k) || encode(:v))",
        "hex_int": "('0x' || substr(:h, :start, 15))::BIGINT",
        "xor": "xor(:a, :b)",
        # translate() is several times slower than a chain of replace() here.
        "digits": (
            "replace(replace(replace(replace(replace(replace(:h,"
            " 'a', '0'), 'b', '1'), 'c', '2'), 'd', '3'), 'e', '4'), 'f', '5')"
        ),
        "letters": "translate(:h, '0123456789abcdef', 'abcdefghijklmnop')",
        # One pass over the characters (1-based index), no substring of :v per position.
        "scramble": (
            "array_to_string(list_transform(string_split(:v, ''), (c, i) -> CASE"
            " WHEN c BETWEEN '0' AND '9' THEN substr(:d, i, 1)"
            " WHEN c BETWEEN 'a' AND 'z' THEN substr(:l, i, 1)"
            " WHEN c BETWEEN 'A' AND 'Z' THEN upper(substr(:l, i, 1))"
            " ELSE c END), '')"
        ),
        "idiv": ":a // :b",
        "only_digits": "regexp_replace(:v, '[^0-9]', '', 'g')",
        "phone_prefix": "regexp_extract(:v, '^[+][0-9]{1,3}[ .-]')",
        "add_days": ":v + to_days(:n)",
        "year": "year(:v)",
        "make_date": "make_date(:y, 1, 1)",
        "pick": "(:arr)[:i]",
    },
    "postgres": {
        "hmac": (
            "encode(sha256(decode(:o, 'hex') || sha256(decode(:i, 'hex')"
            " || convert_to(:v, 'UTF8'))), 'hex')"
        ),
        "keyed": "encode(sha256(decode(:k, 'hex') || convert_to(:v, 'UTF8')), 'hex')",
        "hex_int": "('x' || substr(:h, :start, 15))::bit(60)::BIGINT",
        "xor": ":a # :b",
        "digits": "translate(:h, 'abcdef', '012345')",
        "letters": "translate(:h, '0123456789abcdef', 'abcdefghijklmnop')",
        "scramble": (
            "array_to_string(ARRAY(SELECT CASE"
            " WHEN substr(:v, i, 1) BETWEEN '0' AND '9' THEN substr(:d, i, 1)"
            " WHEN substr(:v, i, 1) BETWEEN 'a' AND 'z' THEN substr(:l, i, 1)"
            " WHEN substr(:v, i, 1) BETWEEN 'A' AND 'Z' THEN upper(substr(:l, i, 1))"
            " ELSE substr(:v, i, 1) END FROM generate_series(1, length(:v)) AS g(i) ORDER BY i),"
            " '')"
        ),
        "idiv": ":a / :b",
        "only_digits": "regexp_replace(:v, '[^0-9]', '', 'g')",
        "phone_prefix": "substring(:v from '^[+][0-9]{1,3}[ .-]')",
        "add_days": ":v + make_interval(days => CAST(:n AS INTEGER))",
        "year": "extract(year from :v)::INTEGER",
        "make_date": "make_date(:y, 1, 1)",
        "pick": "(:arr)[:i]",
    },
    # Spark: native HMAC (4.x; byte-identical to the pad construction and cheaper), hex via
    # conv() (a '0x' cast fails under ANSI mode and is NULL without it), 0-based lambda indexes.
    # The key (:k) is always a bound parameter: Spark servers log statements at INFO.
    "spark": {
        "hmac": "lower(hex(hmac(unhex(:k), encode(:v, 'UTF-8'), 'SHA-256')))",
        "keyed": "sha2(unhex(:k) || encode(:v, 'UTF-8'), 256)",
        "hex_int": "CAST(conv(substr(:h, :start, 15), 16, 10) AS BIGINT)",
        "xor": ":a ^ :b",
        "digits": "translate(:h, 'abcdef', '012345')",
        "letters": "translate(:h, '0123456789abcdef', 'abcdefghijklmnop')",
        "scramble": (
            "array_join(transform(split(:v, ''), (c, i) -> CASE"
            " WHEN c BETWEEN '0' AND '9' THEN substr(:d, i + 1, 1)"
            " WHEN c BETWEEN 'a' AND 'z' THEN substr(:l, i + 1, 1)"
            " WHEN c BETWEEN 'A' AND 'Z' THEN upper(substr(:l, i + 1, 1))"
            " ELSE c END), '')"
        ),
        "idiv": ":a DIV :b",
        "only_digits": "regexp_replace(:v, '[^0-9]', '')",
        "phone_prefix": "regexp_extract(:v, '^[+][0-9]{1,3}[ .-]', 0)",
        "add_days": "timestampadd(DAY, :n, :v)",
        "year": "year(:v)",
        "make_date": "make_date(:y, 1, 1)",
        # An array literal's items are non-null, so Spark takes `arr[NULL]` for non-null too and
        # fails (NullPointerException) on a NULL index: the guard makes the NULL explicit.
        "pick": "CASE WHEN :i IS NULL THEN NULL ELSE (:arr)[:i] END",
    },
}

PARAMETER_DIALECTS = frozenset({"spark"})
"""Dialects whose key material travels as bound parameters (see `bind`), never as literals."""

SUPPORTED_DIALECTS = tuple(_TEMPLATES)


@lru_cache(maxsize=256)
def _parsed(dialect: str, name: str) -> exp.Expr:
    try:
        text = _TEMPLATES[dialect][name]
    except KeyError as exc:
        raise ConfigError(f"masking does not support the {dialect} dialect yet") from exc
    return sqlglot.parse_one(text, read=dialect)


def template(dialect: str, name: str, **values: exp.Expr) -> exp.Expr:
    """A dialect template with its `:placeholders` replaced by expressions."""
    tree = _parsed(dialect, name).copy()
    for marker in list(tree.find_all(exp.Placeholder)):
        value = values.get(marker.name)
        if value is not None:
            # A copy per occurrence: a template may use a placeholder twice.
            replaced = marker.replace(value.copy())
            if marker is tree:
                tree = replaced
    return tree


def text_type(dialect: str) -> exp.DataType:
    return exp.DataType.build("VARCHAR" if dialect == "duckdb" else "TEXT", dialect=dialect)


def as_text(value: exp.Expr, dialect: str) -> exp.Expr:
    return exp.cast(value, text_type(dialect))


def hmac_sql(salt: Salt, purpose: str, value: exp.Expr, dialect: str) -> exp.Expr:
    """HMAC-SHA256(subkey(purpose), utf8(value)) as 64 lowercase hex characters, in SQL.

    In PARAMETER_DIALECTS the key is a named placeholder that `bind` turns into a parameter.
    """
    if dialect in PARAMETER_DIALECTS:
        return template(
            dialect, "hmac", k=_key_marker(salt, f"h_{purpose.encode().hex()}"), v=value
        )
    inner, outer = salt.pads(purpose)
    return template(
        dialect, "hmac", o=exp.Literal.string(outer), i=exp.Literal.string(inner), v=value
    )


def keyed_sql(salt: Salt, purpose: str, value: exp.Expr, dialect: str) -> exp.Expr:
    """SHA-256(prefix_key(purpose) || utf8(value)) as 64 lowercase hex characters: the keyed
    hash behind every transformer.

    A secret-prefix hash is a keyed PRF where no input extends another's padded form (the
    cascade construction on a prefix-free set; Bellare, Canetti and Krawczyk 1996). Length
    extension is the only generic attack on it, and it cannot reach another text here: the
    extension of `key || m` starts with SHA-256's 0x80 padding byte, which cannot follow a
    complete UTF-8 string (it is a continuation byte), so `m || 0x80...` is never a valid
    value to mask. One compression call for values under 24 bytes instead of HMAC's four.
    """
    if dialect in PARAMETER_DIALECTS:
        key: exp.Expr = _key_marker(salt, f"p_{purpose.encode().hex()}")
    else:
        key = exp.Literal.string(salt.prefix_key(purpose).hex())
    return template(dialect, "keyed", k=key, v=value)


# --------------------------------------------------------------------------------------------
# Key material as parameters. Spark servers log every statement at INFO, so in
# PARAMETER_DIALECTS the SQL carries named markers (`:dataops_key_<salt>_<key>`) that say which
# salt (by its public fingerprint) and which key they stand for; `bind` renders the statement
# with `?` markers and derives the values from the salts it is given.

_KEY_MARKER = "dataops_key_"
_MARKER = re.compile(r"([0-9a-f]{12})_(.+)")
_HMAC_KEY = re.compile(r"h_((?:[0-9a-f]{2})*)")
_PREFIX_KEY = re.compile(r"p_((?:[0-9a-f]{2})*)")
_FEISTEL_KEY = re.compile(r"f(\d+)_([km])(\d)")


def _key_marker(salt: Salt, name: str) -> exp.Placeholder:
    return exp.Placeholder(this=f"{_KEY_MARKER}{salt.fingerprint[:12]}_{name}")


def _key_value(marker: str, salts: Mapping[str, Salt]) -> Any:
    match = _MARKER.fullmatch(marker)
    salt = salts.get(match.group(1)) if match else None
    if match is None or salt is None:
        raise ConfigError(
            f"the statement needs the key :{_KEY_MARKER}{marker} of a salt `bind` was not given",
            "pass every salt the statement was built with (masking salt and sampling key)",
        )
    name = match.group(2)
    if found := _HMAC_KEY.fullmatch(name):
        return salt.subkey(bytes.fromhex(found.group(1)).decode()).hex()
    if found := _PREFIX_KEY.fullmatch(name):
        return salt.prefix_key(bytes.fromhex(found.group(1)).decode()).hex()
    if found := _FEISTEL_KEY.fullmatch(name):
        keys, mult = _feistel_keys(salt, int(found.group(1)))
        return (keys if found.group(2) == "k" else mult)[int(found.group(3))]
    raise ConfigError(f"unknown masking key marker :{_KEY_MARKER}{marker}")  # pragma: no cover


def sampling_salt(seed: str) -> Salt:
    """The key of the sampling bucket: from the (public) seed, so which rows are sampled does
    not depend on the masking salt (rotating it re-masks the same rows)."""
    return Salt.from_secret(seed, "sample.seed")


def bind(
    query: exp.Expr | str,
    salts: Salt | Iterable[Salt],
    dialect: str,
    values: Mapping[str, Any] | None = None,
    params: Sequence[Any] = (),
) -> tuple[str, list[Any]]:
    """The statement's SQL text and its positional parameters (`?` markers, in order).

    Key markers get the key material of the salt they name (`salts`: every salt the statement
    was built with, e.g. the masking salt and `sampling_salt(seed)`); other named placeholders (`:name`) take
    `values[name]` (e.g. test inputs); `?` markers already in the statement take `params`, in
    order. Dialects outside PARAMETER_DIALECTS inline their keys and have no key markers.
    An engine wrapper can pass every statement through here: `execute(*bind(sql, salt, ...))`.
    """
    from sqlglot.dialects.dialect import Dialect

    sql = query if isinstance(query, str) else query.sql(dialect)
    by_print = {s.fingerprint[:12]: s for s in ([salts] if isinstance(salts, Salt) else salts)}
    tokens = Dialect.get_or_raise(dialect).tokenize(sql)
    given = iter(params)
    pieces: list[str] = []
    bound: list[Any] = []
    done = 0
    for token, name in zip(tokens, [*tokens[1:], None], strict=True):
        if token.token_type == TokenType.PLACEHOLDER and token.text == "?":
            value = next(given, given)
            if value is given:
                raise ConfigError(f"{len(params)} parameters for more `?` markers in the statement")
            bound.append(value)
            continue
        if token.token_type != TokenType.COLON or name is None or name.start != token.end + 1:
            continue
        if name.token_type not in (TokenType.VAR, TokenType.IDENTIFIER):
            continue
        if name.text.startswith(_KEY_MARKER):
            bound.append(_key_value(name.text[len(_KEY_MARKER) :], by_print))
        elif values is not None and name.text in values:
            bound.append(values[name.text])
        else:
            continue  # a slice bound or a JSON path, not a marker of ours
        pieces.extend([sql[done : token.start], "?"])
        done = name.end + 1
    pieces.append(sql[done:])
    if next(given, given) is not given:
        raise ConfigError(f"{len(params)} parameters for fewer `?` markers in the statement")
    return "".join(pieces), bound


def hex_int(hex_expr: exp.Expr, dialect: str, start: int = 1) -> exp.Expr:
    """A non-negative BIGINT (< 2^60) from 15 hex characters starting at `start` (1-based)."""
    return template(dialect, "hex_int", h=hex_expr, start=exp.Literal.number(start))


def bucket_sql(
    salt: Salt, values: Sequence[exp.Expr], dialect: str, modulus: int = 1_000_000
) -> exp.Expr:
    """The sampling bucket in [0, modulus) of a key (one or more columns, canonicalised as text)."""
    parts: list[exp.Expr] = []
    for i, value in enumerate(values):
        if i:
            parts.append(exp.Literal.string("\x1f"))
        parts.append(
            exp.Coalesce(this=as_text(value, dialect), expressions=[exp.Literal.string("")])
        )
    joined = parts[0]
    for part in parts[1:]:
        joined = exp.DPipe(this=joined, expression=part, safe=True)
    hashed = hmac_sql(salt, "sample", joined, dialect)
    return exp.Mod(this=hex_int(hashed, dialect), expression=exp.Literal.number(modulus))


def python_bucket(salt: Salt, values: Sequence[str], modulus: int = 1_000_000) -> int:
    """Python reference of `bucket_sql` (for tests and explanations)."""
    digest = salt.hmac_hex("sample", "\x1f".join(values))
    return int(digest[:15], 16) % modulus


# --------------------------------------------------------------------------------------------
# Built-in dictionaries: invented words, so a masked value never equals a real one by chance.

_SYLLABLES_A = [
    "ka",
    "lo",
    "mi",
    "ra",
    "sen",
    "ta",
    "vo",
    "bri",
    "dal",
    "fen",
    "gor",
    "hal",
    "jun",
    "kes",
    "lun",
    "mar",
    "nor",
    "pel",
    "quin",
    "ros",
]
_SYLLABLES_B = [
    "ven",
    "dra",
    "lis",
    "mor",
    "tan",
    "bel",
    "cor",
    "dis",
    "fal",
    "gan",
    "hel",
    "jor",
    "kal",
    "len",
    "mos",
]
_SYLLABLES_C = ["a", "o", "i", "ae", "yn", "ix", "ora", "elle", "ian", "ur"]
_PLACES = ["ford", "wick", "haven", "mere", "stead", "brook", "vale", "holm", "thorpe", "burgh"]
_STREET_WORDS = [
    "Quill",
    "Ember",
    "Fable",
    "Lumen",
    "Vesper",
    "Aster",
    "Cobalt",
    "Marrow",
    "Tansy",
    "Orrin",
    "Sable",
    "Wren",
]
_STREET_SUFFIXES = ["St", "Ave", "Rd", "Ln", "Way", "Ct"]
_COMPANY_SUFFIXES = ["Works", "Labs", "Group", "Trading", "Collective"]


def _words(first: Sequence[str], second: Sequence[str], third: Sequence[str] = ("",)) -> list[str]:
    return sorted({(a + b + c).capitalize() for a in first for b in second for c in third})


@lru_cache(maxsize=1)
def dictionaries() -> dict[str, tuple[str, ...]]:
    """Name -> values; chosen by keyed hash, so the same input always picks the same entry."""
    given = _words(_SYLLABLES_A, _SYLLABLES_C)
    family = _words(_SYLLABLES_A, _SYLLABLES_B, ("", "e", "son"))
    return {
        "first_name": tuple(given),
        "last_name": tuple(family),
        "city": tuple(_words(_SYLLABLES_A[:12], _SYLLABLES_B[:6], _PLACES)),
        "street": tuple(f"{w} {s}" for w in _STREET_WORDS for s in _STREET_SUFFIXES),
        "company": tuple(f"{f} {s}" for f in family[:60] for s in _COMPANY_SUFFIXES),
    }


# --------------------------------------------------------------------------------------------
# Transformers


class Transformer(str, Enum):
    PASSTHROUGH = "passthrough"
    NULL = "null"
    CONSTANT = "constant"
    REDACT = "redact"
    HMAC_ID = "hmac_id"
    HMAC_INT = "hmac_int"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    FULL_NAME = "full_name"
    CITY = "city"
    STREET = "street"
    COMPANY = "company"
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    IP = "ip"
    PARTIAL = "partial"
    SCRAMBLE = "scramble"
    NOISE = "noise"
    DATE_SHIFT = "date_shift"
    AGE_BAND = "age_band"
    ZIP_PREFIX = "zip_prefix"


class MaskStrategy(str, Enum):
    """How the sampler evaluates a transformer."""

    NONE = "none"
    """Passthrough: the value is copied."""
    DIRECT = "direct"
    """An expression of the value alone, evaluated per row (cheap, no hash)."""
    VALUE_MAP = "value_map"
    """A keyed function of the value: computed once per distinct value into a mapping table."""
    ENTITY_MAP = "entity_map"
    """Keyed by another column (the entity), e.g. one date offset per customer."""


_STRATEGY = {
    Transformer.PASSTHROUGH: MaskStrategy.NONE,
    Transformer.NULL: MaskStrategy.DIRECT,
    Transformer.CONSTANT: MaskStrategy.DIRECT,
    Transformer.REDACT: MaskStrategy.DIRECT,
    Transformer.PARTIAL: MaskStrategy.DIRECT,
    Transformer.AGE_BAND: MaskStrategy.DIRECT,
    Transformer.ZIP_PREFIX: MaskStrategy.DIRECT,
    Transformer.NOISE: MaskStrategy.ENTITY_MAP,
    Transformer.DATE_SHIFT: MaskStrategy.ENTITY_MAP,
}

_OPTIONS: dict[Transformer, dict[str, type | tuple[type, ...]]] = {
    Transformer.CONSTANT: {"value": (str, int, float, bool)},
    Transformer.REDACT: {"text": str},
    Transformer.HMAC_ID: {"length": int, "prefix": str},
    Transformer.HMAC_INT: {"bits": int},
    Transformer.EMAIL: {"keep_domain": bool, "domain": str},
    Transformer.PHONE: {"keep_country_code": bool},
    Transformer.CARD: {"keep_bin": bool},
    Transformer.PARTIAL: {"keep_first": int, "keep_last": int, "char": str},
    Transformer.NOISE: {"ratio": (int, float), "key": str},
    Transformer.DATE_SHIFT: {"max_days": int, "key": str},
    Transformer.AGE_BAND: {"years": int},
    Transformer.ZIP_PREFIX: {"keep": int, "pad": str},
}


@dataclass(frozen=True)
class MaskRule:
    """A transformer and its options, as written in `masking.columns`."""

    transformer: Transformer
    options: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, value: Any, where: str) -> MaskRule:
        """From config: `email`, or `{transformer: email, keep_domain: false}`."""
        if isinstance(value, str):
            name, options = value, {}
        elif isinstance(value, Mapping):
            options = {str(k): v for k, v in value.items() if k != "transformer"}
            name = str(value.get("transformer", ""))
        else:
            raise ConfigError(f"{where}: a masking rule is a transformer name or a mapping")
        try:
            transformer = Transformer(name)
        except ValueError:
            import difflib

            names = [t.value for t in Transformer]
            close = difflib.get_close_matches(name, names, n=1)
            hint = f"did you mean `{close[0]}`?" if close else f"transformers: {', '.join(names)}"
            raise ConfigError(f"{where}: unknown transformer {name!r}", hint) from None
        allowed = _OPTIONS.get(transformer, {})
        for key, option in options.items():
            if key not in allowed:
                hint = f"options: {', '.join(allowed)}" if allowed else "it takes no options"
                raise ConfigError(f"{where}: {transformer.value} has no option {key!r}", hint)
            if not isinstance(option, allowed[key]) or (
                isinstance(option, bool) and allowed[key] in (int, (int, float))
            ):
                raise ConfigError(f"{where}: option {key!r} has the wrong type ({option!r})")
        bits = options.get("bits") if transformer is Transformer.HMAC_INT else None
        if bits is not None and not (2 <= bits <= 62 and bits % 2 == 0):
            # The Feistel network permutes two equal halves: an odd width would not be a
            # bijection, and the products must stay inside a BIGINT.
            raise ConfigError(f"{where}: hmac_int bits must be an even number from 2 to 62")
        return cls(transformer, dict(options))

    @property
    def strategy(self) -> MaskStrategy:
        return _STRATEGY.get(self.transformer, MaskStrategy.VALUE_MAP)

    @property
    def domain(self) -> str:
        """Columns with the same domain share one mapping table (same value -> same mask)."""
        return self.transformer.value + json.dumps(dict(self.options), sort_keys=True)

    def describe(self) -> str:
        if not self.options:
            return self.transformer.value
        opts = ", ".join(f"{k}={v}" for k, v in sorted(self.options.items()))
        return f"{self.transformer.value}({opts})"

    def opt(self, name: str, default: Any) -> Any:
        return self.options.get(name, default)


PASSTHROUGH = MaskRule(Transformer.PASSTHROUGH)


def canonical(rule: MaskRule, value: exp.Expr, dialect: str) -> exp.Expr:
    """The text form a value is hashed in: so INT vs BIGINT and DuckDB vs PostgreSQL agree."""
    if rule.transformer is Transformer.HMAC_INT:
        return exp.cast(value, exp.DataType.build("BIGINT"))
    text = as_text(value, dialect)
    if rule.transformer is Transformer.EMAIL:
        return exp.Lower(this=exp.Trim(this=text))
    return text


def _lit(value: Any) -> exp.Expr:
    return exp.convert(value)


def _substr(value: exp.Expr, start: int | exp.Expr, length: int) -> exp.Expr:
    start_expr = start if isinstance(start, exp.Expr) else exp.Literal.number(start)
    return exp.Substring(this=value, start=start_expr, length=exp.Literal.number(length))


def _concat(*parts: exp.Expr) -> exp.Expr:
    out = parts[0]
    for part in parts[1:]:
        out = exp.DPipe(this=out, expression=part, safe=True)
    return out


def _length(value: exp.Expr) -> exp.Expr:
    return exp.Length(this=value)


def _pick(dictionary: str, h: exp.Expr, dialect: str, start: int) -> exp.Expr:
    """`dictionary[hash mod n]`: an array literal indexed in place (no join, no subquery)."""
    values = dictionaries()[dictionary]
    index = exp.Mod(this=hex_int(h, dialect, start), expression=exp.Literal.number(len(values)))
    array = exp.Array(expressions=[exp.Literal.string(v) for v in values])
    # sqlglot keeps bracket indexes 0-based and renders them 1-based for both dialects.
    return template(dialect, "pick", arr=array, i=index)


def _feistel_keys(salt: Salt, bits: int) -> tuple[list[int], list[int]]:
    """The round keys and (odd) round multipliers of the `bits`-wide Feistel network."""
    mask = (1 << (bits // 2)) - 1

    def draw(purpose: str) -> int:
        return int.from_bytes(salt.subkey(f"hmac_int/{bits}/{purpose}")[:8], "big") & mask

    return [draw(str(r)) for r in range(4)], [draw(f"m{r}") | 1 for r in range(4)]


def _feistel(value: exp.Expr, salt: Salt, bits: int, dialect: str) -> exp.Expr:
    """A keyed permutation of [0, 2^bits): a 4-round balanced Feistel network in integer SQL.

    Values outside the range pass unchanged, so the map is a bijection on the whole type and
    primary/foreign keys stay unique and joinable.
    """
    half = bits // 2
    mask = (1 << half) - 1
    keys: Sequence[exp.Expr]
    mult: Sequence[exp.Expr]
    if dialect in PARAMETER_DIALECTS:
        keys = [_bigint(_key_marker(salt, f"f{bits}_k{r}")) for r in range(4)]
        mult = [_bigint(_key_marker(salt, f"f{bits}_m{r}")) for r in range(4)]
    else:
        plain_keys, plain_mult = _feistel_keys(salt, bits)
        keys, mult = [_num(k) for k in plain_keys], [_num(k) for k in plain_mult]

    def band(a: exp.Expr, m: int) -> exp.Expr:
        return exp.paren(exp.BitwiseAnd(this=a, expression=_num(m)), copy=False)

    value = exp.cast(value, exp.DataType.build("BIGINT"))
    shift = exp.Literal.number  # shift counts stay INTEGER (PostgreSQL has no bigint >> bigint)
    left: exp.Expr = band(exp.BitwiseRightShift(this=value, expression=shift(half)), mask)
    right: exp.Expr = band(value, mask)
    for r in range(4):
        # F(R) = ((R xor k) * m  mod 2^half) xor (R >> 3): products stay below 2^(2*half) <= 2^62.
        mixed = template(dialect, "xor", a=exp.paren(right, copy=False), b=keys[r].copy())
        product = band(exp.Mul(this=exp.paren(mixed, copy=False), expression=mult[r].copy()), mask)
        f = template(
            dialect,
            "xor",
            a=product,
            b=exp.paren(exp.BitwiseRightShift(this=right, expression=shift(3)), copy=False),
        )
        left, right = right, template(dialect, "xor", a=exp.paren(left, copy=False), b=f)
    combined = exp.BitwiseOr(
        this=exp.paren(
            exp.BitwiseLeftShift(this=exp.paren(left, copy=False), expression=shift(half))
        ),
        expression=exp.paren(right, copy=False),
    )
    in_range = exp.and_(
        exp.GTE(this=value, expression=_num(0)), exp.LT(this=value, expression=_num(1 << bits))
    )
    return exp.Case(ifs=[exp.If(this=in_range, true=combined)], default=value)


def python_feistel(value: int, salt: Salt, bits: int) -> int:
    """Python reference of `_feistel` (tests check the SQL against it)."""
    if not 0 <= value < (1 << bits):
        return value
    half = bits // 2
    mask = (1 << half) - 1
    keys, mult = _feistel_keys(salt, bits)
    left, right = (value >> half) & mask, value & mask
    for r in range(4):
        f = (((right ^ keys[r]) * mult[r]) & mask) ^ (right >> 3)
        left, right = right, left ^ f
    return (left << half) | right


def _col(name: str) -> exp.Column:
    return exp.column(name, quoted=True)


def map_query(
    rule: MaskRule, values: exp.Query, salt: Salt, dialect: str, carry: Sequence[str] = ()
) -> exp.Select:
    """SELECT raw, masked over `values` (a query of distinct canonical values named `raw`).

    Built in stages so each expensive piece (the keyed hash, a regex, the digit string) is computed
    once per value and then only referenced: per-character lambdas would otherwise recompute
    the hash for every character. `carry` names columns of `values` passed through every stage
    (after `raw`, `masked`): the sampler masks nearly-unique columns in line this way, row by
    row, with no DISTINCT and no join back. Their names must not clash with the stages' (`raw`,
    `h`, `d`, `x`...).
    """
    t = rule.transformer
    kept = [_col(name) for name in carry]
    purpose = t.value if t is not Transformer.FULL_NAME else "full_name"
    raw = _col("raw")
    stage1: list[exp.Expr] = [raw]
    if t is not Transformer.HMAC_INT:  # a keyed permutation of the integer, no hash
        stage1.append(keyed_sql(salt, purpose, as_text(raw, dialect), dialect).as_("h"))
    if t is Transformer.PHONE and rule.opt("keep_country_code", True):
        prefix = exp.Coalesce(this=template(dialect, "phone_prefix", v=raw), expressions=[_lit("")])
        stage1.append(prefix.as_("pre"))
    elif t is Transformer.PHONE:
        stage1.append(_lit("").as_("pre"))
    if t is Transformer.CARD:
        only = template(dialect, "only_digits", v=raw)
        stage1.append(exp.Length(this=only).as_("n"))
        stage1.append(only.as_("od"))
    query = exp.select(*stage1, *_copies(kept)).from_(values.subquery("v0"))
    names = [e.alias_or_name for e in stage1]
    stage2: list[exp.Expr] = [_col(n) for n in names]
    if t is Transformer.CARD:
        stage2.append(_keyed_digits(_col("h"), dialect, 2).as_("d"))
    if t is Transformer.SCRAMBLE:
        stage2.append(template(dialect, "digits", h=_col("h")).as_("d"))
        stage2.append(template(dialect, "letters", h=_col("h")).as_("l"))
    if t is Transformer.PHONE:
        rest = exp.Substring(
            this=raw, start=exp.Add(this=_length(_col("pre")), expression=exp.Literal.number(1))
        )
        stage2.append(rest.as_("rest"))
        stage2.append(_keyed_digits(_col("h"), dialect, 2).as_("d"))
    if t is Transformer.IP:
        stage2.append(hex_int(_col("h"), dialect).as_("x"))
    query = exp.select(*stage2, *_copies(kept)).from_(query.subquery("v1"))
    names = [e.alias_or_name for e in stage2]
    stage3: list[exp.Expr] = [_col(n) for n in names]
    if t is Transformer.SCRAMBLE:
        # Longer values reuse the digest cyclically: 64 keyed characters per value are plenty.
        stage3.append(_cycled(_col("d"), raw, 64, dialect).as_("dd"))
        stage3.append(_cycled(_col("l"), raw, 64, dialect).as_("ll"))
    if t is Transformer.PHONE:
        stage3.append(_cycled(_col("d"), _col("rest"), 30, dialect).as_("dd"))
    if t is Transformer.CARD:
        stage3.append(_card_body(rule).as_("b"))
    query = exp.select(*stage3, *_copies(kept)).from_(query.subquery("v2"))
    if t is Transformer.CARD:
        # The body as a number, for the arithmetic Luhn check digit (at most 18 digits).
        number = exp.cast(
            exp.Nullif(this=_col("b"), expression=_lit("")), exp.DataType.build("BIGINT")
        )
        query = exp.select(
            raw,
            _col("b"),
            exp.Coalesce(this=number, expressions=[_num(0)]).as_("x"),
            *_copies(kept),
        ).from_(query.subquery("v3n"))
    masked = _masked_value(rule, salt, dialect)
    return exp.select(raw, masked.as_("masked"), *_copies(kept)).from_(query.subquery("v3"))


def _copies(columns: Sequence[exp.Expr]) -> list[exp.Expr]:
    return [c.copy() for c in columns]


def _num(n: int) -> exp.Expr:
    # Typed BIGINT: DuckDB would otherwise multiply small literals as INT32 and overflow.
    return exp.cast(exp.Literal.number(n), exp.DataType.build("BIGINT"))


def _bigint(value: exp.Expr) -> exp.Expr:
    return exp.cast(value, exp.DataType.build("BIGINT"))


def _keyed_digits(h: exp.Expr, dialect: str, slices: int) -> exp.Expr:
    """15 keyed decimal digits per 60-bit slice of the digest (at most 4): no per-character work."""
    chunks = []
    for i in range(slices):
        value = exp.Mod(this=hex_int(h, dialect, 1 + 15 * i), expression=_num(10**15))
        # 10^15 + value has 16 digits with a leading 1: dropping it leaves the 15 digits
        # zero-padded, as lpad(value, 15, '0') does, for a third less CPU in DuckDB.
        led = exp.Add(this=value, expression=_num(10**15))
        chunks.append(exp.Substring(this=as_text(led, dialect), start=exp.Literal.number(2)))
    return _concat(*chunks)


def _cycled(keyed: exp.Expr, value: exp.Expr, width: int, dialect: str) -> exp.Expr:
    """`keyed` (`width` characters) repeated until it is at least as long as `value`."""
    times = exp.Add(
        this=template(dialect, "idiv", a=_length(value), b=exp.Literal.number(width)),
        expression=exp.Literal.number(1),
    )
    return exp.func("repeat", keyed, times, dialect=dialect)


_CARD_BODY = 18
"""Card bodies keep at most 18 digits (cards have 12-19 with the check digit): one BIGINT."""


def _card_body(rule: MaskRule) -> exp.Expr:
    """All digits but the check digit: keyed digits, optionally after the real 6-digit BIN."""
    n = exp.Least(
        this=exp.Sub(this=_col("n"), expression=exp.Literal.number(1)),
        expressions=[exp.Literal.number(_CARD_BODY)],
    )
    if rule.opt("keep_bin", False):
        return _concat(
            _substr(_col("od"), 1, 6),
            exp.Substring(
                this=_col("d"),
                start=exp.Literal.number(1),
                length=_at_least_zero(exp.Sub(this=n, expression=exp.Literal.number(6))),
            ),
        )
    return exp.Substring(this=_col("d"), start=exp.Literal.number(1), length=_at_least_zero(n))


def _at_least_zero(value: exp.Expr) -> exp.Expr:
    # PostgreSQL rejects negative substring lengths (values without digits in a card column).
    return exp.Greatest(this=value, expressions=[exp.Literal.number(0)])


def _luhn_check(number: exp.Expr, dialect: str) -> exp.Expr:
    """The Luhn check digit of a body of at most 18 digits held as a BIGINT: integer arithmetic."""
    total: exp.Expr | None = None
    for k in range(_CARD_BODY):
        shifted = template(dialect, "idiv", a=number.copy(), b=_num(10**k)) if k else number.copy()
        digit = exp.paren(exp.Mod(this=exp.paren(shifted), expression=_num(10)))
        term: exp.Expr = digit
        if k % 2 == 0:  # the rightmost digit of the body is doubled, then every other one
            # 2d, minus 9 when that exceeds 9 (d >= 5)
            term = exp.paren(
                exp.Sub(
                    this=exp.Mul(this=_num(2), expression=digit),
                    expression=exp.Mul(
                        this=_num(9),
                        expression=exp.paren(template(dialect, "idiv", a=digit.copy(), b=_num(5))),
                    ),
                )
            )
        total = term if total is None else exp.Add(this=total, expression=term)
    assert total is not None
    return exp.Mod(
        this=exp.paren(
            exp.Sub(
                this=_num(10),
                expression=exp.Mod(this=exp.paren(total), expression=_num(10)),
            )
        ),
        expression=_num(10),
    )


def _masked_value(rule: MaskRule, salt: Salt, dialect: str) -> exp.Expr:
    """The final stage of `map_query`: the masked value from the staged columns."""
    t = rule.transformer
    raw, h = _col("raw"), _col("h")
    if t is Transformer.HMAC_INT:
        return _feistel(raw, salt, int(rule.opt("bits", 62)), dialect)
    if t is Transformer.HMAC_ID:
        length = max(4, min(64, int(rule.opt("length", 16))))
        return _concat(_lit(str(rule.opt("prefix", ""))), _substr(h, 1, length))
    if t in (Transformer.FIRST_NAME, Transformer.LAST_NAME, Transformer.CITY, Transformer.COMPANY):
        return _pick(t.value, h, dialect, 1)
    if t is Transformer.FULL_NAME:
        return _concat(
            _pick("first_name", h, dialect, 1), _lit(" "), _pick("last_name", h, dialect, 16)
        )
    if t is Transformer.STREET:
        number = exp.Add(
            this=exp.Mod(this=hex_int(h, dialect, 16), expression=exp.Literal.number(9899)),
            expression=exp.Literal.number(1),
        )
        return _concat(as_text(number, dialect), _lit(" "), _pick("street", h, dialect, 1))
    if t is Transformer.EMAIL:
        local = _concat(_lit("user_"), _substr(h, 1, 12))
        if rule.opt("keep_domain", True):
            domain: exp.Expr = exp.func("split_part", raw, _lit("@"), _lit(2), dialect=dialect)
            domain = exp.Coalesce(
                this=exp.Nullif(this=domain, expression=_lit("")),
                expressions=[_lit("example.invalid")],
            )
        else:
            domain = _lit(str(rule.opt("domain", "example.invalid")))
        return _concat(local, _lit("@"), domain)
    if t is Transformer.PHONE:
        # Letters become digits too ("1-800-FLOWERS" names a business, or a person).
        scrambled = template(dialect, "scramble", v=_col("rest"), d=_col("dd"), l=_col("dd"))
        return _concat(_col("pre"), scrambled)
    if t is Transformer.CARD:
        return _concat(_col("b"), as_text(_luhn_check(_col("x"), dialect), dialect))
    if t is Transformer.IP:
        # Four bit fields of one 60-bit slice; 240.0.0.0/4 is reserved, so a masked address is
        # never a real host.
        x = _col("x")

        def bits(shift: int, mask: int) -> exp.Expr:
            shifted = (
                exp.paren(
                    exp.BitwiseRightShift(this=x.copy(), expression=exp.Literal.number(shift))
                )
                if shift
                else x.copy()
            )
            return exp.paren(exp.BitwiseAnd(this=shifted, expression=_num(mask)))

        parts: list[exp.Expr] = [as_text(exp.Add(this=_num(240), expression=bits(0, 15)), dialect)]
        for shift in (4, 12, 20):
            parts.extend([_lit("."), as_text(bits(shift, 255), dialect)])
        return _concat(*parts)
    if t is Transformer.SCRAMBLE:
        return template(dialect, "scramble", v=raw, d=_col("dd"), l=_col("ll"))
    if t is Transformer.NOISE:
        return exp.Div(
            this=exp.cast(hex_int(h, dialect), exp.DataType.build("DOUBLE")),
            expression=exp.Literal.number(float(1 << 60)),
        )
    if t is Transformer.DATE_SHIFT:
        span = 2 * int(rule.opt("max_days", 30)) + 1
        return exp.Sub(
            this=exp.Mod(this=hex_int(h, dialect), expression=exp.Literal.number(span)),
            expression=exp.Literal.number(int(rule.opt("max_days", 30))),
        )
    raise ConfigError(f"{t.value} is not a mapped transformer")  # pragma: no cover


def mapped_value_sql(rule: MaskRule, raw: exp.Expr, salt: Salt, dialect: str) -> exp.Expr:
    """The masked value of one canonical value, as a scalar subquery (tests, explanations).

    ENTITY_MAP rules give the per-entity draw (a fraction in [0, 1) or a day offset) that
    `apply_sql` combines with the column.
    """
    values = exp.select(raw.as_("raw"))
    return exp.Subquery(
        this=exp.select("masked").from_(map_query(rule, values, salt, dialect).subquery("m"))
    )


def apply_sql(
    rule: MaskRule,
    column: exp.Expr,
    mapped: exp.Expr | None,
    data_type: str,
    dialect: str,
) -> exp.Expr:
    """The output expression of a column: the masked value cast back to the column's type.

    `mapped` is the mapping table's value for this row (VALUE_MAP / ENTITY_MAP strategies).
    """
    t = rule.transformer
    target = exp.DataType.build(data_type, dialect=dialect, udt=True)
    if t is Transformer.PASSTHROUGH:
        return column
    if t is Transformer.NULL:
        return exp.cast(exp.null(), target)
    if t is Transformer.CONSTANT:
        return exp.cast(_lit(rule.opt("value", "")), target)
    if t is Transformer.REDACT:
        masked: exp.Expr = _lit(str(rule.opt("text", "[redacted]")))
        return exp.Case(
            ifs=[exp.If(this=exp.Is(this=column, expression=exp.null()), true=exp.null())],
            default=exp.cast(masked, target),
        )
    if t is Transformer.PARTIAL:
        text = as_text(column, dialect)
        first, last = int(rule.opt("keep_first", 1)), int(rule.opt("keep_last", 0))
        char = _lit(str(rule.opt("char", "*"))[:1] or "*")
        middle = exp.func(
            "repeat",
            char,
            exp.Sub(this=_length(text), expression=exp.Literal.number(first + last)),
            dialect=dialect,
        )
        kept = _concat(
            exp.Left(this=text, expression=exp.Literal.number(first)),
            middle,
            exp.Right(this=text, expression=exp.Literal.number(last)) if last else _lit(""),
        )
        short = exp.LTE(this=_length(text), expression=exp.Literal.number(first + last))
        every = exp.func("repeat", char, _length(text), dialect=dialect)
        return exp.cast(exp.Case(ifs=[exp.If(this=short, true=every)], default=kept), target)
    if t is Transformer.ZIP_PREFIX:
        text = as_text(column, dialect)
        keep = int(rule.opt("keep", 3))
        # The default pad is not a digit: "627**" can never be another person's real code.
        pad = exp.func(
            "repeat",
            _lit(str(rule.opt("pad", "*"))[:1] or "*"),
            exp.Greatest(
                this=exp.Sub(this=_length(text), expression=exp.Literal.number(keep)),
                expressions=[exp.Literal.number(0)],
            ),
            dialect=dialect,
        )
        return exp.cast(
            _concat(exp.Left(this=text, expression=exp.Literal.number(keep)), pad), target
        )
    if t is Transformer.AGE_BAND:
        # Dates generalise to the first day of their band of years (age 37 -> the 30-39 band).
        years = int(rule.opt("years", 10))
        year = template(dialect, "year", v=column)
        start = exp.Sub(
            this=year, expression=exp.Mod(this=year, expression=exp.Literal.number(years))
        )
        return exp.cast(template(dialect, "make_date", y=start), target)
    if mapped is None:  # pragma: no cover - the sampler always joins the map
        raise ConfigError(f"{t.value} needs its mapping table")
    if t is Transformer.NOISE:
        ratio = float(rule.opt("ratio", 0.1))
        factor = exp.Add(
            this=exp.Literal.number(1),
            expression=exp.Mul(
                this=exp.Literal.number(ratio),
                expression=exp.paren(
                    exp.Sub(
                        this=exp.Mul(this=exp.Literal.number(2), expression=mapped),
                        expression=exp.Literal.number(1),
                    )
                ),
            ),
        )
        noisy = exp.Mul(
            this=exp.cast(column, exp.DataType.build("DOUBLE")), expression=exp.paren(factor)
        )
        return exp.cast(noisy, target)
    if t is Transformer.DATE_SHIFT:
        shifted = template(
            dialect,
            "add_days",
            v=column,
            n=exp.Coalesce(this=mapped, expressions=[exp.Literal.number(0)]),
        )
        return exp.cast(shifted, target)
    return exp.cast(mapped, target)


# --------------------------------------------------------------------------------------------
# Classification


class PiiKind(str, Enum):
    EMAIL = "email"
    PHONE = "phone"
    CARD = "card"
    IP = "ip"
    FIRST_NAME = "first_name"
    LAST_NAME = "last_name"
    FULL_NAME = "full_name"
    STREET = "street"
    CITY = "city"
    ZIP = "zip"
    BIRTH_DATE = "birth_date"
    NATIONAL_ID = "national_id"
    SECRET = "secret"
    FREE_TEXT = "free_text"


class Reason(str, Enum):
    """Why a column got its rule (recorded in the lock file for review)."""

    CONFIG = "config"
    META = "meta"
    TAG = "tag"
    NAME = "name"
    VALUE = "value"
    KEY = "key"
    NOT_TEXT = "not_text"
    LOW_CARDINALITY = "low_cardinality"
    FREE_TEXT = "free_text"


DEFAULT_RULES: dict[PiiKind, MaskRule] = {
    PiiKind.EMAIL: MaskRule(Transformer.EMAIL),
    PiiKind.PHONE: MaskRule(Transformer.PHONE),
    PiiKind.CARD: MaskRule(Transformer.CARD),
    PiiKind.IP: MaskRule(Transformer.IP),
    PiiKind.FIRST_NAME: MaskRule(Transformer.FIRST_NAME),
    PiiKind.LAST_NAME: MaskRule(Transformer.LAST_NAME),
    PiiKind.FULL_NAME: MaskRule(Transformer.FULL_NAME),
    PiiKind.STREET: MaskRule(Transformer.STREET),
    PiiKind.CITY: MaskRule(Transformer.CITY),
    PiiKind.ZIP: MaskRule(Transformer.ZIP_PREFIX),
    PiiKind.BIRTH_DATE: MaskRule(Transformer.AGE_BAND),
    PiiKind.NATIONAL_ID: MaskRule(Transformer.HMAC_ID),
    PiiKind.SECRET: MaskRule(Transformer.NULL),
    PiiKind.FREE_TEXT: MaskRule(Transformer.SCRAMBLE),
}

# Column-name patterns, most specific first (matched against the lower-cased name).
_NAME_PATTERNS: tuple[tuple[PiiKind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (PiiKind.EMAIL, r"(^|_)e?-?mail(_address)?($|_)"),
        (PiiKind.PHONE, r"(^|_)(phone|mobile|cell|tel|telephone|fax)(_number|_no)?($|_)"),
        (PiiKind.CARD, r"(^|_)(card|cc|credit_card|pan)(_number|_no|_num)?$"),
        (PiiKind.IP, r"(^|_)ip(_address|_addr)?$"),
        (PiiKind.FIRST_NAME, r"^(first|given|fore)_?name$"),
        (PiiKind.LAST_NAME, r"^(last|family|sur)_?name$"),
        (PiiKind.FULL_NAME, r"^(full_?name|customer_name|contact_name|person_name)$"),
        (PiiKind.STREET, r"(^|_)(street|address(_line)?(_?\d)?|street_address)$"),
        (PiiKind.CITY, r"^(city|town)$"),
        (PiiKind.ZIP, r"(^|_)(zip|zip_code|zipcode|postal_code|postcode)$"),
        (PiiKind.BIRTH_DATE, r"^(birth_?date|date_of_birth|dob|birthday)$"),
        (PiiKind.NATIONAL_ID, r"(^|_)(ssn|social_security|passport|national_id|tax_id|iban)"),
        (PiiKind.SECRET, r"(^|_)(password|passwd|secret|token|api_key)($|_)"),
    )
)

IDENTIFIER_NAME = re.compile(r"(^|_)(id|uuid|guid|key)$", re.IGNORECASE)
"""Column names of surrogate identifiers (`id`, `order_id`, `event_uuid`): they name rows."""
_EMAIL_VALUE = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[a-z]{2,}\s*$", re.IGNORECASE)
_PHONE_VALUE = re.compile(r"^\s*\+?[0-9][0-9 ().-]{6,18}[0-9]\s*$")
_IP_VALUE = re.compile(r"^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$")
_CARD_VALUE = re.compile(r"^[0-9][0-9 -]{11,21}[0-9]$")

_TEXT_TYPES = ("VARCHAR", "TEXT", "CHAR", "STRING", "CHARACTER", "BPCHAR")


def luhn_valid(number: str) -> bool:
    digits = [int(c) for c in number if c.isdigit()]
    if len(digits) < 12:
        return False
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2 == 1:
            d = d * 2 - 9 if d >= 5 else d * 2
        total += d
    return total % 10 == 0


def classify_values(values: Iterable[str]) -> PiiKind | None:
    """The PII kind most sampled distinct values look like (>= 80% of the non-empty ones)."""
    sample = [v for v in values if v and v.strip()]
    if not sample:
        return None
    checks: tuple[tuple[PiiKind, Callable[[str], bool]], ...] = (
        (PiiKind.EMAIL, lambda v: bool(_EMAIL_VALUE.match(v))),
        (PiiKind.IP, lambda v: bool(_IP_VALUE.match(v.strip()))),
        (PiiKind.CARD, lambda v: bool(_CARD_VALUE.match(v.strip())) and luhn_valid(v)),
        (PiiKind.PHONE, lambda v: bool(_PHONE_VALUE.match(v)) and sum(c.isdigit() for c in v) >= 7),
    )
    for kind, check in checks:
        if sum(1 for v in sample if check(v)) >= 0.8 * len(sample):
            return kind
    return None


def is_text_type(data_type: str) -> bool:
    upper = data_type.upper()
    return any(upper.startswith(t) for t in _TEXT_TYPES)


_STRUCTURED_TYPE = re.compile(
    r"^(JSON|JSONB|STRUCT|MAP|UNION|LIST|ARRAY)\b|\[\]$|^_", re.IGNORECASE
)
_INTEGER_TYPES = ("BIGINT", "INT8", "HUGEINT", "UBIGINT", "UHUGEINT", "INTEGER", "INT", "INT4")
_TIME_NAME = re.compile(r"(^|_)(at|ts|time|timestamp|epoch|unix|date|day|ms|millis|seconds)$")


def is_structured_type(data_type: str) -> bool:
    """JSON, struct, map, union and list columns: they can nest any value, PII included."""
    return bool(_STRUCTURED_TYPE.search(data_type.strip()))


def is_integer_type(data_type: str) -> bool:
    """Integers wide enough to hold a phone or card number."""
    return data_type.strip().upper() in _INTEGER_TYPES


def value_checked(data_type: str) -> bool:
    """Columns whose values classification inspects: text, structured and wide integers."""
    return is_text_type(data_type) or is_structured_type(data_type) or is_integer_type(data_type)


_TOKEN_SPLIT = re.compile(r"[{}\[\],:;'\"=<>]+")
_EMAIL_INSIDE = re.compile(r"[^@\s\"'{}\[\],:;<>]+@[^@\s\"'{}\[\],:;<>]+\.[a-z]{2,}", re.IGNORECASE)


def classify_nested(values: Iterable[str]) -> PiiKind | None:
    """The PII kind found inside structured values (JSON, structs, lists), if any.

    Any single e-mail, phone, card or IP among their leaves is enough: a nested document is
    masked whole, so one hit is proof, and no hit is no proof of the opposite.
    """
    for value in values:
        if _EMAIL_INSIDE.search(value):
            return PiiKind.EMAIL
        for token in _TOKEN_SPLIT.split(value):
            token = token.strip()
            if len(token) < 7:
                continue
            digits = sum(c.isdigit() for c in token)
            if _CARD_VALUE.match(token) and luhn_valid(token) and not token.isdigit():
                return PiiKind.CARD
            if _PHONE_VALUE.match(token) and digits >= 7 and not token.isdigit():
                # Bare digit runs inside documents are mostly counts, ids and timestamps.
                return PiiKind.PHONE
            if _IP_VALUE.match(token):
                return PiiKind.IP
    return None


def classify_integers(column: str, values: Iterable[str]) -> PiiKind | None:
    """Phone or card numbers stored as integers (>= 80% of the sampled distinct values)."""
    if _TIME_NAME.search(column.lower()):
        return None  # epoch seconds and milliseconds have phone-number widths
    sample = [v.strip().lstrip("+") for v in values if v and v.strip()]
    sample = [v for v in sample if v.isdigit()]
    if not sample:
        return None
    cards = sum(1 for v in sample if 13 <= len(v) <= 19 and luhn_valid(v))
    if cards >= 0.8 * len(sample):
        return PiiKind.CARD
    phones = sum(1 for v in sample if 10 <= len(v) <= 15)
    if phones >= 0.8 * len(sample):
        return PiiKind.PHONE
    return None


@dataclass(frozen=True)
class ColumnFacts:
    """What classification knows about one source column."""

    table: str
    """`source_name.table_name`."""
    column: str
    data_type: str
    meta: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    is_key: bool = False
    """A primary or foreign key of the FK graph (kept so joins work, unless a rule says)."""
    distinct_values: tuple[str, ...] = ()
    """A small sample of distinct values (for value patterns)."""
    distinct_count: int | None = None


@dataclass(frozen=True)
class ColumnClass:
    """One column's classification: the PII kind (if any), the rule and why."""

    table: str
    column: str
    kind: PiiKind | None
    rule: MaskRule
    reason: Reason
    detail: str = ""

    @property
    def masked(self) -> bool:
        return self.rule.transformer is not Transformer.PASSTHROUGH

    @property
    def qualified(self) -> str:
        return f"{self.table}.{self.column}"


_KIND_ALIASES: dict[str, PiiKind] = {
    "date_of_birth": PiiKind.BIRTH_DATE,
    "dob": PiiKind.BIRTH_DATE,
    "birthdate": PiiKind.BIRTH_DATE,
    "birthday": PiiKind.BIRTH_DATE,
    "address": PiiKind.STREET,
    "street_address": PiiKind.STREET,
    "postal_code": PiiKind.ZIP,
    "zipcode": PiiKind.ZIP,
    "zip_code": PiiKind.ZIP,
    "postcode": PiiKind.ZIP,
    "phone_number": PiiKind.PHONE,
    "mobile": PiiKind.PHONE,
    "credit_card": PiiKind.CARD,
    "card_number": PiiKind.CARD,
    "ip_address": PiiKind.IP,
    "ssn": PiiKind.NATIONAL_ID,
    "email_address": PiiKind.EMAIL,
}
_NAME_KINDS = (PiiKind.FIRST_NAME, PiiKind.LAST_NAME, PiiKind.FULL_NAME)
_DATE_KINDS = (PiiKind.BIRTH_DATE,)


def _kind_of_label(label: str, facts: ColumnFacts) -> PiiKind:
    """A declared PII label (`pii: email`, `pii: name`, `pii: true`) refined by name and values."""
    lowered = label.strip().lower()
    if lowered in {k.value for k in PiiKind}:
        return PiiKind(lowered)
    if lowered in _KIND_ALIASES:
        return _KIND_ALIASES[lowered]
    by_name = _kind_from_name(facts.column)
    if lowered in ("name", "person", "person_name"):
        return by_name if by_name in _NAME_KINDS else PiiKind.FULL_NAME
    if by_name is not None:
        return by_name
    return classify_values(facts.distinct_values) or PiiKind.FREE_TEXT


def _kind_from_name(column: str) -> PiiKind | None:
    name = column.lower()
    for kind, pattern in _NAME_PATTERNS:
        if pattern.search(name):
            return kind
    return None


def _rule_for(kind: PiiKind, data_type: str) -> MaskRule:
    """The default rule of a kind, or `null` when the column's type cannot hold its output."""
    text = is_text_type(data_type)
    if kind in _DATE_KINDS:
        return DEFAULT_RULES[kind] if not text else MaskRule(Transformer.NULL)
    return DEFAULT_RULES[kind] if text else MaskRule(Transformer.NULL)


def _meta_label(meta: Mapping[str, Any]) -> tuple[str | MaskRule | None, str] | None:
    """What dbt meta declares: a PII label, an explicit rule, or `None` for "not PII"."""
    for key in ("pii", "sensitive", "masking", "dataops_mask"):
        if key not in meta:
            continue
        value = meta[key]
        if value is False or (isinstance(value, str) and value.lower() in ("false", "none", "no")):
            return None, f"meta.{key}={value}"
        if isinstance(value, Mapping):
            return MaskRule.parse(value, f"meta.{key}"), f"meta.{key}"
        text = str(value)
        if key in ("masking", "dataops_mask") or (
            text in {t.value for t in Transformer} and text not in {k.value for k in PiiKind}
        ):
            return MaskRule.parse(text, f"meta.{key}"), f"meta.{key}={text}"
        return ("" if value is True else text), f"meta.{key}={value}"
    return None


def classify_column(
    facts: ColumnFacts,
    *,
    configured: MaskRule | None = None,
    default_free_text: MaskRule = DEFAULT_RULES[PiiKind.FREE_TEXT],
    low_cardinality: int = 100,
    new_column: bool = False,
) -> ColumnClass:
    """Config -> dbt meta and tags -> column name -> keys -> values -> categories, free text.

    Fails closed: what no rule proves harmless is masked. Values are checked on text,
    structured (JSON, struct, list) and wide integer columns, identifier-named ones included;
    a `new_column` (not confirmed in the lock file) is not kept for its low cardinality.
    """

    def result(
        kind: PiiKind | None, rule: MaskRule, reason: Reason, detail: str = ""
    ) -> ColumnClass:
        return ColumnClass(facts.table, facts.column, kind, rule, reason, detail)

    if configured is not None:
        return result(None, configured, Reason.CONFIG, "masking.columns")
    declared = _declared(facts)
    if declared is not None:
        return declared
    by_name = _kind_from_name(facts.column)
    if by_name is not None and (
        is_text_type(facts.data_type)
        or by_name in _DATE_KINDS
        or by_name in (PiiKind.SECRET, PiiKind.NATIONAL_ID, PiiKind.CARD, PiiKind.PHONE)
    ):
        return result(by_name, _rule_for(by_name, facts.data_type), Reason.NAME, "column name")
    if facts.is_key:
        # A key is kept so joins work, unless its values are contact details: a branch can make
        # any column a key (a test, `sample.primary_keys`). Those transformers are keyed
        # functions of the value, so every joined column gets the same mask; the sampler's
        # orphan check fails the run if one does not.
        kind = classify_values(facts.distinct_values) if is_text_type(facts.data_type) else None
        if kind is not None and kind in _JOINABLE_KINDS:
            return result(
                kind,
                DEFAULT_RULES[kind],
                Reason.VALUE,
                f"key whose sampled values look like {kind.value}: masked, joins kept",
            )
        return result(None, PASSTHROUGH, Reason.KEY, "primary or foreign key of the FK graph")
    by_values = _kind_from_values(facts)
    if by_values is not None:
        return result(
            by_values,
            _rule_for(by_values, facts.data_type),
            Reason.VALUE,
            f"{len(facts.distinct_values)} sampled distinct values look like {by_values.value}",
        )
    if IDENTIFIER_NAME.search(facts.column):
        # Surrogate identifiers (UUIDs, event ids) name rows, not people; joins need them kept.
        return result(None, PASSTHROUGH, Reason.KEY, "identifier column name")
    structured = is_structured_type(facts.data_type)
    if not is_text_type(facts.data_type) and not structured:
        return result(None, PASSTHROUGH, Reason.NOT_TEXT, facts.data_type)
    if (
        not new_column
        and facts.distinct_count is not None
        and facts.distinct_count <= low_cardinality
    ):
        return result(
            None, PASSTHROUGH, Reason.LOW_CARDINALITY, f"{facts.distinct_count} distinct values"
        )
    why = "new column, not confirmed in the lock file" if new_column else "unknown text"
    if structured:
        return result(
            PiiKind.FREE_TEXT, MaskRule(Transformer.NULL), Reason.FREE_TEXT, f"{why}: masked"
        )
    return result(PiiKind.FREE_TEXT, default_free_text, Reason.FREE_TEXT, f"{why}: masked")


_JOINABLE_KINDS = (PiiKind.EMAIL, PiiKind.PHONE, PiiKind.CARD, PiiKind.IP)
"""PII kinds whose default transformer maps each distinct value to one masked value."""


def _declared(facts: ColumnFacts) -> ColumnClass | None:
    """What dbt meta or tags declare about the column, if anything."""

    def result(
        kind: PiiKind | None, rule: MaskRule, reason: Reason, detail: str = ""
    ) -> ColumnClass:
        return ColumnClass(facts.table, facts.column, kind, rule, reason, detail)

    declared = _meta_label(facts.meta)
    if declared is not None:
        label, detail = declared
        if label is None:
            return result(None, PASSTHROUGH, Reason.META, detail)
        if isinstance(label, MaskRule):
            return result(None, label, Reason.META, detail)
        kind = _kind_of_label(label, facts)
        return result(kind, _rule_for(kind, facts.data_type), Reason.META, detail)
    for tag in facts.tags:
        lowered = tag.lower()
        if lowered in ("pii", "sensitive") or lowered.startswith("pii:"):
            kind = _kind_of_label(lowered.split(":", 1)[1] if ":" in lowered else "", facts)
            return result(kind, _rule_for(kind, facts.data_type), Reason.TAG, f"tag {tag}")
    return None


def _kind_from_values(facts: ColumnFacts) -> PiiKind | None:
    """The PII kind the sampled values show, by the column's type family."""
    if not facts.distinct_values:
        return None
    if is_text_type(facts.data_type):
        return classify_values(facts.distinct_values) or (
            classify_nested(facts.distinct_values) if _looks_nested(facts.distinct_values) else None
        )
    if is_structured_type(facts.data_type):
        return classify_nested(facts.distinct_values)
    if is_integer_type(facts.data_type) and not IDENTIFIER_NAME.search(facts.column):
        return classify_integers(facts.column, facts.distinct_values)
    return None


def _looks_nested(values: Sequence[str]) -> bool:
    """Text columns holding JSON documents."""
    return any(v.lstrip().startswith(("{", "[")) for v in values)


def stricter(first: ColumnClass, second: ColumnClass) -> ColumnClass:
    """The stricter of two decisions on one column: a column masked on either side stays masked,
    and when both mask, `first` (the reviewed side) wins."""
    if first.masked or not second.masked:
        return first
    return second
