"""The masking salt: the team secret behind every keyed hash (masking, sampling, report tags).

Apart from masking.py so that checking a report's tag does not import sqlglot.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from dataops_dev.errors import SaltError

DEFAULT_SALT_ENV = "DATAOPS_SALT"
_KEY_DERIVATION = b"dataops-dev/salt/v1"
_BLOCK = 64  # SHA-256 block size: HMAC pads its key to this many bytes


@dataclass(frozen=True)
class Salt:
    """The secret behind every keyed hash; only its fingerprint is ever written anywhere."""

    variable: str
    key: bytes = field(repr=False)

    @classmethod
    def from_env(
        cls, variable: str = DEFAULT_SALT_ENV, environ: Mapping[str, str] | None = None
    ) -> Salt:
        environ = os.environ if environ is None else environ
        value = environ.get(variable)
        if not value:
            raise SaltError(
                f"the masking salt is not set: environment variable {variable} is empty or unset",
                f"export {variable}=<a long random secret shared by your team>, "
                "then run `dataops-dev sample`",
            )
        return cls.from_secret(value, variable)

    @classmethod
    def from_secret(cls, secret: str, variable: str = DEFAULT_SALT_ENV) -> Salt:
        # Derive a fixed-size key so salts of any length behave alike in the SQL HMAC.
        key = hmac.new(_KEY_DERIVATION, secret.encode("utf-8"), hashlib.sha256).digest()
        return cls(variable=variable, key=key)

    @property
    def fingerprint(self) -> str:
        """Identifies the salt in sample records without revealing it."""
        return hashlib.sha256(b"fingerprint:" + self.key).hexdigest()[:16]

    def subkey(self, purpose: str) -> bytes:
        """One key per purpose, so sampling and each transformer hash independently."""
        return hmac.new(self.key, purpose.encode("utf-8"), hashlib.sha256).digest()

    def pads(self, purpose: str) -> tuple[str, str]:
        """The HMAC inner and outer padded keys (hex) for `purpose`."""
        key = self.subkey(purpose).ljust(_BLOCK, b"\0")
        inner = bytes(b ^ 0x36 for b in key)
        outer = bytes(b ^ 0x5C for b in key)
        return inner.hex(), outer.hex()

    def hmac_hex(self, purpose: str, value: str) -> str:
        """Python reference of `hmac_sql`: what the SQL must produce."""
        return hmac.new(self.subkey(purpose), value.encode("utf-8"), hashlib.sha256).hexdigest()

    def prefix_key(self, purpose: str) -> bytes:
        """The secret prefix of `masking.keyed_sql` (derived apart from HMAC's keys)."""
        return self.subkey("prefix:" + purpose)

    def keyed_hex(self, purpose: str, value: str) -> str:
        """Python reference of `masking.keyed_sql`: what the SQL must produce."""
        return hashlib.sha256(self.prefix_key(purpose) + value.encode("utf-8")).hexdigest()
