"""The providers the hub knows: one `SPEC` per package under hub/providers/, found by
walking the package, so adding a provider is adding its folder. Every list of providers in
the hub, the pipelines and the CLI is derived from here (which sync, which reconcile, which
stream is which, what the CLI accepts, which emulator the demo runs), never written by hand.

The packages are imported on first use, not when this module is: a provider's client and
streams import the hub's core (tokens, the integration store, the page writers), which in
turn validates connections here, so an import-time walk would be a loop.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any, Mapping

import hub.providers
from hub.errors import ValidationError
from hub.providers.spec import ProviderSpec
from hub.sync.stream_spec import StreamSpec


@cache
def providers() -> dict[str, ProviderSpec]:
    """name -> spec: the SPEC of every subpackage of hub.providers (plain modules there are
    shared code), by name."""
    found = {}
    for module in sorted(pkgutil.iter_modules(hub.providers.__path__), key=lambda m: m.name):
        if module.ispkg:
            spec = importlib.import_module(f"hub.providers.{module.name}").SPEC
            assert spec.name == module.name, f"hub/providers/{module.name} declares {spec.name}"
            found[spec.name] = spec
    return found


@cache
def _streams_by_key() -> dict[str, StreamSpec]:
    return {stream.key: stream for spec in providers().values() for stream in spec.streams}


def names() -> list[str]:
    return sorted(providers())


def get(provider: str) -> ProviderSpec:
    spec = providers().get(provider)
    if spec is None:
        raise ValidationError(f"unknown provider '{provider}'; known providers: {', '.join(names())}")
    return spec


def validate(provider: str, config: Mapping[str, Any], credentials: Mapping[str, Any]) -> ProviderSpec:
    """Check that a connection has every field its provider needs; names only in errors."""
    spec = get(provider)
    for kind, required, given in (
        ("credential", spec.required_credentials, credentials),
        ("config", spec.required_config, config),
    ):
        missing = [f for f in required if given.get(f) in (None, "")]
        if missing:
            raise ValidationError(
                f"{spec.display_name} needs {kind} field(s) {', '.join(missing)} (required: {', '.join(required)})"
            )
    return spec


def stream(key: str) -> StreamSpec:
    """The stream `<provider>/<name>`."""
    return _streams_by_key()[key]


def streams(provider: str | None = None) -> tuple[StreamSpec, ...]:
    """Every pull stream, or those of `provider`."""
    return tuple(_streams_by_key().values()) if provider is None else get(provider).streams


def syncing_providers() -> tuple[str, ...]:
    """Providers with pull streams (a sync partition, job and schedule each)."""
    return tuple(name for name, spec in providers().items() if spec.streams)


def reconciling_providers() -> tuple[str, ...]:
    return tuple(name for name, spec in providers().items() if spec.reconciles)


def with_client() -> tuple[str, ...]:
    """Providers the hub has an API client for (open_client, the live connection check)."""
    return tuple(name for name, spec in providers().items() if spec.client is not None)


def with_capability(capability: str) -> tuple[str, ...]:
    """Providers the hub uses for `capability` (e.g. "messaging", "delivery")."""
    return tuple(name for name, spec in providers().items() if capability in spec.capabilities)


def emulated() -> dict[str, str]:
    """provider -> its emulator's module (a name only: the hub never imports emulators)."""
    return {name: spec.emulator for name, spec in providers().items() if spec.emulator}
