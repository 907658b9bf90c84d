"""Deterministic fake business data for the emulators: the same seed gives the same
records on every machine, so tests can assert exact record sets and benchmarks compare."""

from __future__ import annotations

import random
from datetime import date, timedelta

_FIRST = ("Acme", "Blue", "Cedar", "Delta", "Evergreen", "Falcon", "Granite", "Harbor", "Iron", "Juniper",
          "Keystone", "Lakeside", "Maple", "North", "Oak", "Pioneer", "Quarry", "River", "Summit", "Timber")
_SECOND = ("Supply", "Lumber", "Electric", "Plumbing", "Concrete", "Roofing", "Steel", "Glass", "Paving", "Hardware",
           "Rentals", "Logistics", "Foods", "Produce", "Linen", "Print", "Fuel", "Tools", "Drywall", "Masonry")
_SUFFIX = ("Co", "Inc", "LLC", "Ltd", "Group", "Partners")
_STREETS = ("Main St", "Oak Ave", "Pine Rd", "Market St", "Harbor Blvd", "Mill Ln")
_CITIES = (("Austin", "TX", "78701"), ("Denver", "CO", "80202"), ("Atlanta", "GA", "30303"), ("Portland", "OR", "97201"))


class DataGen:
    def __init__(self, seed: int = 0):
        self.random = random.Random(seed)

    def company_name(self, index: int) -> str:
        """Unique for every index (the index is part of the name past the first 2400)."""
        first = _FIRST[index % len(_FIRST)]
        second = _SECOND[(index // len(_FIRST)) % len(_SECOND)]
        suffix = _SUFFIX[(index // (len(_FIRST) * len(_SECOND))) % len(_SUFFIX)]
        lap = index // (len(_FIRST) * len(_SECOND) * len(_SUFFIX))
        return f"{first} {second} {suffix}" + (f" {lap + 1}" if lap else "")

    def email(self, name: str) -> str:
        local = "".join(ch for ch in name.lower() if ch.isalnum())[:20]
        return f"ap@{local}.example.com"

    def phone(self) -> str:
        return f"+1-555-{self.random.randint(100, 999)}-{self.random.randint(1000, 9999)}"

    def tax_id(self) -> str:
        return f"{self.random.randint(10, 99)}-{self.random.randint(1000000, 9999999)}"

    def address(self) -> dict:
        city, state, postal = self.random.choice(_CITIES)
        return {"line1": f"{self.random.randint(1, 9999)} {self.random.choice(_STREETS)}", "city": city, "state": state, "postal_code": postal, "country": "US"}

    def amount(self, low: float = 10, high: float = 5000) -> float:
        return round(self.random.uniform(low, high), 2)

    def day(self, start: date, span_days: int) -> date:
        return start + timedelta(days=self.random.randint(0, span_days))

    def choice(self, options):
        return self.random.choice(options)
