"""Standard Webhooks signing of outgoing deliveries, with secret rotation.

The MAC itself is `hub.inbound.verify.sign_standard`, the same code the inbound verifier
checks against: there is one place that knows how a ``v1`` signature is made.

An endpoint's secrets live in one encrypted envelope (`webhook_endpoint.secret`,
purpose ``webhook_endpoint.secret``) as ``{"current": "whsec_...", "previous":
"whsec_...", "previous_until": <unix seconds>}``. After a rotation both secrets sign every
delivery until ``previous_until`` (Standard Webhooks: "send signatures for the current and
the old key during rotation"), current first, so a receiver that still has the old secret
keeps verifying while its operator deploys the new one. After the grace period only the
current secret signs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from hub.crypto import mask
from hub.inbound.verify import generate_standard_secret, sign_standard

__all__ = ["SigningSecrets", "generate_standard_secret", "standard_headers"]

DEFAULT_GRACE_S = 86400.0  # Svix's default rotation grace: one day
MAX_GRACE_S = 7 * 86400.0


@dataclass(frozen=True)
class SigningSecrets:
    """The secrets that sign one endpoint's deliveries. Never shown in repr or str."""

    current: str = field(repr=False)
    previous: str | None = field(default=None, repr=False)
    previous_until: float | None = None

    @classmethod
    def from_stored(cls, value: Any) -> "SigningSecrets":
        """From a decrypted envelope: the dict above, or a bare string (one secret)."""
        if isinstance(value, str):
            return cls(value)
        if not isinstance(value, Mapping) or not isinstance(value.get("current"), str):
            raise ValueError("stored webhook secret has no current secret")
        return cls(value["current"], value.get("previous"), value.get("previous_until"))

    def to_stored(self) -> dict[str, Any]:
        out: dict[str, Any] = {"current": self.current}
        if self.previous:
            out.update(previous=self.previous, previous_until=self.previous_until)
        return out

    def active(self, now: float | None = None) -> list[str]:
        """The secrets that sign right now: current, then previous while in its grace."""
        now = time.time() if now is None else now
        keys = [self.current]
        if self.previous and self.previous_until is not None and now < self.previous_until:
            keys.append(self.previous)
        return keys

    def rotated(self, grace_s: float = DEFAULT_GRACE_S, new_secret: str | None = None, now: float | None = None) -> "SigningSecrets":
        """A new current secret; the old one keeps signing for `grace_s` seconds (0: stops now)."""
        if not 0 <= grace_s <= MAX_GRACE_S:
            raise ValueError(f"rotation grace must be 0..{MAX_GRACE_S:.0f} seconds")
        now = time.time() if now is None else now
        return SigningSecrets(new_secret or generate_standard_secret(), self.current if grace_s else None, now + grace_s if grace_s else None)

    def masked(self) -> str:
        return "whsec_" + mask(self.current)

    def __repr__(self) -> str:
        return f"SigningSecrets(current={self.masked()}, rotating={self.previous is not None})"

    __str__ = __repr__


def standard_headers(secrets: SigningSecrets, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers for one attempt. The timestamp is the attempt's
    own (re-signed on every retry), so a receiver's freshness window is never a reason
    to reject a late retry; ``webhook-id`` stays the same across attempts for dedupe."""
    signatures = " ".join(sign_standard(key, msg_id, timestamp, body) for key in secrets.active(float(timestamp)))
    return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "webhook-signature": signatures}
