"""Where dataops_dev's objects live on Spark, which has one catalog instead of databases.

PostgreSQL keeps the sample and the environments in a sandbox *database* beside production's; a
Spark catalog has only schemas, so the sandbox is a schema *prefix* instead:

    <prefix>__sample__<source schema>.<table>   the masked sample of one production source schema
    <prefix>__<env>[_<custom>].<model>          an environment's models (custom schemas suffixed)
    <prefix>__deploy__…                         deploy's own versioned schemas (see deploy)

`prefix` is `backend.sandbox_database` (default `dataops`). Production's schemas are the dbt
target's and its custom ones; nothing here ever names one of them, and `check_not_production`
refuses a prefix that would.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from dataops_dev.errors import ConfigError

DEFAULT_PREFIX = "dataops"

# Spark folds unquoted names to lower case and the Hive metastore stores them so: keep to that.
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,99}$")


def _checked(name: str, what: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(
            f"{what} {name!r} is not a usable Spark schema name",
            "use lower-case letters, digits and underscores, starting with a letter",
        )
    return name


def sandbox_prefix(configured: str | None) -> str:
    """The schema prefix of everything dataops_dev writes on Spark."""
    return _checked(configured or DEFAULT_PREFIX, "backend.sandbox_database")


def sample_schema(prefix: str, source_schema: str) -> str:
    """The schema holding the masked sample of production's `source_schema`."""
    return f"{prefix}__sample__{_checked(source_schema.lower(), 'source schema')}"


def env_schema(prefix: str, env_name: str, custom: str | None = None) -> str:
    """An environment's schema (`custom`: a model's custom schema, as dbt suffixes it)."""
    base = f"{prefix}__{_checked(env_name.lower(), 'environment name')}"
    return f"{base}_{_checked(custom.lower(), 'custom schema')}" if custom else base


def owned(prefix: str, schema: str) -> bool:
    """Whether `schema` is one of ours (under the sandbox prefix)."""
    return schema.lower().startswith(f"{prefix}__")


def check_not_production(prefix: str, production_schemas: Iterable[str]) -> None:
    """Refuse a prefix under which a production schema would fall: we drop our schemas freely."""
    clashing = sorted(s for s in production_schemas if owned(prefix, s) or s.lower() == prefix)
    if clashing:
        raise ConfigError(
            f"backend.sandbox_database {prefix!r} would cover production schema {clashing[0]!r}",
            "choose a sandbox prefix no production schema starts with",
        )


# The sample is published in versions, because Spark can neither rename a schema nor replace a
# set of tables in one statement: each sample is written whole into its own schemas, then a
# recorded pointer moves to it (and the views under `sample_schema` follow). A reader that goes
# by the pointer never sees half a sample; an interrupted sample leaves the previous one intact.
_VERSION = re.compile(r"^[a-z0-9]{1,32}$")


def _version(version: str) -> str:
    if not _VERSION.match(version):
        raise ConfigError(f"sample version {version!r} is not lower-case letters and digits")
    return version


def sample_version_schema(prefix: str, source_schema: str, version: str) -> str:
    """The schema holding version `version` of the masked sample of `source_schema`."""
    return f"{sample_schema(prefix, source_schema)}__v{_version(version)}"


def sample_scratch_schema(prefix: str, version: str) -> str:
    """The sampler's work tables while it builds version `version` (Spark has no temporary
    tables); dropped when the sample is written."""
    return f"{prefix}__samplework__v{_version(version)}"


def sample_version_of(prefix: str, schema: str) -> str | None:
    """The version a sample data or scratch schema belongs to; None for any other schema."""
    match = re.match(
        rf"^{re.escape(prefix)}__(?:sample__[a-z0-9_]+?|samplework)__v([a-z0-9]{{1,32}})$",
        schema.lower(),
    )
    return match.group(1) if match else None
