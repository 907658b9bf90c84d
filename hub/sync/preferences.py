"""Sync preferences of one integration: which streams run, in which direction, at what
local hour the nightly sync starts, and how two-sided edits are settled.

They live in the integration's (encrypted) config under `sync`, holding only what differs
from the defaults, e.g.

    {"sync": {"hour": 3, "conflict_policy": "manual",
              "streams": {"invoices": {"direction": "import"}, "accounts": {"enabled": false}}}}

Assets, exports and schedules all read them through `read`/`from_config`, so a preference
set with `hub sync set` is honoured everywhere at the next run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from sqlalchemy.engine import Connection

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.sync.merge import POLICIES as CONFLICT_POLICIES  # stated and implemented in merge.py
from hub.providers import registry

DIRECTIONS = ("import", "export", "both")
DEFAULT_HOUR = 2
DEFAULT_POLICY = "field_ownership"

# streams written to the provider; every stream its spec declares is read from it. Every
# accounting provider (a spec with `accounting`) exports its parties and invoices of both kinds.
EXPORTABLE = {("procore", "documents")}
ACCOUNTING_EXPORTS = ("vendors", "customers", "invoices", "sales_invoices")


def _exports(provider: str) -> set[str]:
    names = {name for p, name in EXPORTABLE if p == provider}
    return names | set(ACCOUNTING_EXPORTS) if registry.get(provider).accounting is not None else names


def stream_directions(provider: str) -> dict[str, tuple[str, ...]]:
    """The streams of `provider` and the directions each supports."""
    imports = {s.name for s in registry.streams() if s.provider == provider}
    exports = _exports(provider)
    return {
        name: ("import", "export", "both") if name in imports and name in exports
        else ("export",) if name in exports else ("import",)
        for name in sorted(imports | exports)
    }


@dataclass(frozen=True)
class StreamPreference:
    enabled: bool
    direction: str

    def runs(self, direction: str) -> bool:
        """Whether this stream should run its `direction` ("import" or "export") part."""
        return self.enabled and self.direction in (direction, "both")


@dataclass(frozen=True)
class SyncPreferences:
    provider: str
    streams: Mapping[str, StreamPreference]
    hour: int = DEFAULT_HOUR
    conflict_policy: str = DEFAULT_POLICY
    stored: Mapping[str, Any] = field(default_factory=dict)  # the overrides as stored

    def runs(self, stream: str, direction: str) -> bool:
        pref = self.streams.get(stream)
        return pref is not None and pref.runs(direction)

    @property
    def any_enabled(self) -> bool:
        return any(p.enabled for p in self.streams.values())


def from_config(provider: str, config: Mapping[str, Any]) -> SyncPreferences:
    """Preferences from a decrypted integration config (defaults for anything unset)."""
    stored = dict(config.get("sync") or {})
    overrides = stored.get("streams") or {}
    streams = {}
    for name, directions in stream_directions(provider).items():
        own = overrides.get(name) or {}
        default_direction = "both" if len(directions) == 3 else directions[0]
        streams[name] = StreamPreference(bool(own.get("enabled", True)), own.get("direction", default_direction))
    return SyncPreferences(provider, streams, int(stored.get("hour", DEFAULT_HOUR)),
                           stored.get("conflict_policy", DEFAULT_POLICY), stored)


def read(conn: Connection, keyring: Keyring, integration_id: int) -> SyncPreferences:
    item = store.get_integration(conn, keyring, integration_id)
    return from_config(item.provider, item.config)


def update(
    conn: Connection,
    keyring: Keyring,
    integration_id: int,
    *,
    hour: int | None = None,
    conflict_policy: str | None = None,
    stream: str | None = None,
    enabled: bool | None = None,
    direction: str | None = None,
) -> SyncPreferences:
    """Change some preferences (None leaves a value as it is); validated, then stored."""
    item = store.get_integration(conn, keyring, integration_id)
    stored = dict(item.config.get("sync") or {})
    if hour is not None:
        if not 0 <= hour <= 23:
            raise ValidationError(f"hour must be 0-23 (local time of the company), not {hour}")
        stored["hour"] = hour
    if conflict_policy is not None:
        if conflict_policy not in CONFLICT_POLICIES:
            raise ValidationError(f"unknown conflict policy '{conflict_policy}'; choose one of {', '.join(CONFLICT_POLICIES)}")
        stored["conflict_policy"] = conflict_policy
    if (enabled is not None or direction is not None) and stream is None:
        raise ValidationError("--enable/--disable/--direction need --stream")
    if stream is not None:
        directions = stream_directions(item.provider)
        if stream not in directions:
            raise ValidationError(f"{item.provider} has no stream '{stream}'; it has {', '.join(directions)}")
        own = dict((stored.get("streams") or {}).get(stream) or {})
        if direction is not None:
            if direction not in DIRECTIONS:
                raise ValidationError(f"direction must be one of {', '.join(DIRECTIONS)}, not '{direction}'")
            if direction not in directions[stream]:
                raise ValidationError(f"{item.provider} {stream} can only run {' or '.join(directions[stream])}")
            own["direction"] = direction
        if enabled is not None:
            own["enabled"] = enabled
        stored["streams"] = {**(stored.get("streams") or {}), stream: own}
    if hour is None and conflict_policy is None and stream is None:
        raise ValidationError("nothing to change: give --hour, --conflict-policy or --stream with a setting")
    store.update_config(conn, keyring, integration_id, {"sync": stored})
    return from_config(item.provider, {**item.config, "sync": stored})
