"""Providers: one package per provider (hub/providers/<name>/), each exposing the `SPEC`
every registry of the hub is derived from (spec.py, collected by registry.py), its API
client (client.py) and, for providers the hub syncs, its streams and their mappings
(streams.py). Adding a provider is a new folder here, its emulator module and its tests.

The modules beside the packages are what every provider shares: one transport (transport.py)
that owns OAuth 2.0 refresh (before expiry and on 401) with the rotated refresh token
persisted under a row lock (tokens.py), retries with backoff and jitter that honour
Retry-After, a client-side rate budget (ratebudget.py) and the error taxonomy (errors.py,
status_errors.py); open_client (connect.py) builds a stored integration's client from its
spec. A provider's client adds only its own wire details: paths, headers, pagination and how
its error bodies read. Provider packages never import each other.
"""
