"""Integrations Hub core.

Everything in this package runs without Dagster: schema and migrations, the encrypted
secret store, provider registry, sync log recorder, CLI. `pipelines/`, `resources/` and
`sensors/` are the thin Dagster face over it.
"""
