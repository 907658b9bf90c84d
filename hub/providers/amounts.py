"""Amounts from provider records as exact decimals: the one reading of a money or quantity
field that every provider's invoice mapping shares."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def dec(value: Any, default: Any = 0) -> Decimal:
    """Amounts as exact decimals (floats from JSON via their shortest text); absent or null ->
    `default`."""
    if value is None or value == "":
        value = default
    return Decimal(str(value))
