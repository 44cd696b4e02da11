"""The report's integrity tag: an HMAC over its canonical JSON, keyed from the masking salt.

`report.json` is an editable file; deploy must not take its word for what was reviewed. The tag
makes an edit detectable by anyone who cannot also compute the key (which needs the team salt).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dataops_dev.config import LoadedConfig
    from dataops_dev.salt import Salt

TAG_KEY = "integrity"
"""Top-level key of report.json holding the tag (not covered by the tag itself)."""
_PURPOSE = "report-integrity/v1"
"""Domain separation: the tag key is a subkey of the salt's key, never the salt itself."""
_SCHEME = "hmac-sha256:"


class IntegrityStatus(str, Enum):
    COMPUTED = "computed"
    """Built in this process (by `review`), not read from a file."""
    VERIFIED = "verified"
    """Read from a file whose tag matches its content."""
    UNCHECKED = "unchecked"
    """Read from a file without checking the tag."""
    MISSING = "missing"
    """Read from a file without a tag."""
    MISMATCH = "mismatch"
    """Read from a file whose content does not match its tag: it was edited after review."""
    NO_KEY = "no_key"
    """The tag could not be checked: the masking salt is not set."""

    @property
    def trusted(self) -> bool:
        return self in (IntegrityStatus.COMPUTED, IntegrityStatus.VERIFIED)

    @property
    def problem(self) -> str | None:
        """Why a report in this state is not trusted (None when it is)."""
        return _PROBLEMS.get(self)


_PROBLEMS = {
    IntegrityStatus.UNCHECKED: "the report's integrity tag was not checked",
    IntegrityStatus.MISSING: "the report has no integrity tag (written by an older version, "
    "or by hand)",
    IntegrityStatus.MISMATCH: "the report was modified after the review (its integrity tag "
    "does not match its content)",
    IntegrityStatus.NO_KEY: "the report's integrity cannot be checked: the masking salt is not set",
}


@dataclass(frozen=True)
class IntegrityKey:
    key: bytes

    @classmethod
    def from_salt(cls, salt: Salt) -> IntegrityKey:
        return cls(salt.subkey(_PURPOSE))


def canonical_json(data: Mapping[str, Any]) -> bytes:
    """The bytes the tag covers: the report's JSON less the tag, keys sorted, no spaces."""
    body = {k: v for k, v in data.items() if k != TAG_KEY}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )


def tag(data: Mapping[str, Any], key: IntegrityKey) -> str:
    return _SCHEME + hmac.new(key.key, canonical_json(data), hashlib.sha256).hexdigest()


def signed(data: Mapping[str, Any], key: IntegrityKey) -> dict[str, Any]:
    """`data` with its tag as the last key."""
    body = {k: v for k, v in data.items() if k != TAG_KEY}
    return {**body, TAG_KEY: tag(body, key)}


def verify(data: Mapping[str, Any], key: IntegrityKey | None) -> IntegrityStatus:
    """The status of report JSON `data` (as parsed from its file)."""
    stored = data.get(TAG_KEY)
    if not isinstance(stored, str) or not stored:
        return IntegrityStatus.MISSING
    if key is None:
        return IntegrityStatus.NO_KEY
    if hmac.compare_digest(stored.encode("utf-8"), tag(data, key).encode("utf-8")):
        return IntegrityStatus.VERIFIED
    return IntegrityStatus.MISMATCH


def integrity_key(loaded: LoadedConfig) -> IntegrityKey | None:
    """The report tag's key, derived from the masking salt; None when the salt is not set."""
    from dataops_dev.errors import SaltError
    from dataops_dev.salt import Salt

    try:
        return IntegrityKey.from_salt(Salt.from_env(loaded.config.sample.salt_env))
    except SaltError:
        return None
