"""Encryption of stored secrets: integration config and credentials, webhook signing secrets.

Why AES-GCM and not Fernet: every ciphertext must name the key that made it, so that a
keyring of several keys (during a rotation) decrypts in one step and a wrong key is
reported as "no key with id X" instead of a generic failure. Fernet tokens carry no key
id. AES-256-GCM from `cryptography` is authenticated encryption too; the purpose string
("integration.credentials", ...) is bound in as associated data, so a ciphertext copied
into another column does not decrypt.

Stored form (a JSONB envelope): ``{"v": 1, "kid": "<8 hex>", "n": "<nonce b64>", "ct": "<b64>"}``.
The key id is the first 8 hex digits of SHA-256 of the key, so keys need no names.

Keys come from ``HUB_SECRET_KEYS``: comma-separated url-safe base64 of 32 random bytes,
newest first. New values are encrypted under the first; any listed key decrypts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from typing import Any, Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from hub.errors import SecretKeyError
from hub.settings import SECRET_KEYS_VAR

ENVELOPE_VERSION = 1


def generate_key() -> str:
    """A new key in the form HUB_SECRET_KEYS expects."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def key_id(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()[:8]


@dataclass(frozen=True)
class _Key:
    kid: str
    aead: AESGCM = field(repr=False)
    raw: bytes = field(repr=False)


class Keyring:
    """The configured keys. Its repr shows key ids only, never key material."""

    def __init__(self, encoded_keys: list[str]):
        if not encoded_keys:
            raise SecretKeyError(
                f"{SECRET_KEYS_VAR} is not set: it must hold one or more encryption keys, newest first "
                f"(create one with `hub keys generate`)"
            )
        keys: list[_Key] = []
        for position, encoded in enumerate(encoded_keys, start=1):
            try:
                raw = base64.urlsafe_b64decode(encoded.encode())
            except (binascii.Error, ValueError):
                raw = b""
            if len(raw) != 32:
                raise SecretKeyError(
                    f"{SECRET_KEYS_VAR}: key #{position} is not url-safe base64 of 32 bytes "
                    f"(create one with `hub keys generate`)"
                )
            keys.append(_Key(key_id(raw), AESGCM(raw), raw))
        self._keys = keys
        self._by_id = {k.kid: k for k in keys}

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Keyring":
        value = (environ if environ is not None else os.environ).get(SECRET_KEYS_VAR, "")
        return cls([part.strip() for part in value.split(",") if part.strip()])

    @property
    def primary_kid(self) -> str:
        return self._keys[0].kid

    @property
    def key_ids(self) -> list[str]:
        return [k.kid for k in self._keys]

    def __repr__(self) -> str:
        return f"Keyring(key_ids={self.key_ids})"

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A key for another use (e.g. signing session cookies), derived from the newest key
        with HKDF-SHA256 and the purpose as `info`: stable across restarts and workers,
        unrelated to the encryption key and to other purposes. Rotating the newest key
        changes it."""
        return self.derive_each(purpose, length)[0]

    def derive_each(self, purpose: str, length: int = 32) -> list[bytes]:
        """`derive` under every configured key, newest first: what a signature made before the
        newest key was rotated in is checked against, so rotating keys does not invalidate
        what older keys signed while they are still configured."""
        return [HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(k.raw) for k in self._keys]

    def encrypt(self, value: Any, purpose: str) -> dict:
        """Encrypt a JSON-serialisable value under the newest key."""
        key = self._keys[0]
        nonce = secrets.token_bytes(12)
        plaintext = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
        ciphertext = key.aead.encrypt(nonce, plaintext, purpose.encode())
        return {
            "v": ENVELOPE_VERSION,
            "kid": key.kid,
            "n": base64.b64encode(nonce).decode(),
            "ct": base64.b64encode(ciphertext).decode(),
        }

    def decrypt(self, envelope: Mapping[str, Any], purpose: str) -> Any:
        """Decrypt an envelope made by `encrypt` under any configured key."""
        if not is_envelope(envelope):
            raise SecretKeyError(f"stored {purpose} is not an encrypted envelope (was it written without the hub?)")
        key = self._by_id.get(envelope["kid"])
        if key is None:
            raise SecretKeyError(
                f"{SECRET_KEYS_VAR} has no key with id {envelope['kid']} (stored {purpose} was encrypted under it); "
                f"configured key ids: {', '.join(self.key_ids)}"
            )
        try:
            plaintext = key.aead.decrypt(base64.b64decode(envelope["n"]), base64.b64decode(envelope["ct"]), purpose.encode())
        except (InvalidTag, binascii.Error, ValueError):
            raise SecretKeyError(
                f"stored {purpose} failed authentication under key {key.kid}: it is corrupted or was tampered with"
            ) from None
        return json.loads(plaintext)

    def needs_rotation(self, envelope: Mapping[str, Any]) -> bool:
        return envelope.get("kid") != self.primary_kid


def is_envelope(value: Any) -> bool:
    return isinstance(value, Mapping) and value.get("v") == ENVELOPE_VERSION and {"kid", "n", "ct"} <= value.keys()


def mask(value: Any) -> str:
    """How a secret is shown to a person: never more than its last four characters."""
    text = "" if value is None else str(value)
    if len(text) >= 16:
        return "****" + text[-4:]
    return "****"


class SecretDict(Mapping[str, Any]):
    """A read-only mapping of secret values whose repr and str are masked.

    Credentials travel through the code as this type so that an accidental log line,
    f-string or exception argument shows `****` instead of the secret.
    """

    def __init__(self, data: Mapping[str, Any]):
        self._data = dict(data)

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def masked(self) -> dict[str, str]:
        return {k: mask(v) for k, v in self._data.items()}

    def reveal(self) -> dict[str, Any]:
        """The plain values, for the one place that must send them to a provider."""
        return dict(self._data)

    def __repr__(self) -> str:
        return f"SecretDict({self.masked()})"

    __str__ = __repr__
