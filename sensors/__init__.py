"""Dagster sensors of the hub; each module holds one concern."""
