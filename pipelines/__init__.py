"""Dagster code location of the Integrations Hub (see definitions.py)."""
