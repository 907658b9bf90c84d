"""The subscription plans the hub sells: read from a TOML file (hub/billing/plans.toml, or the
file HUB_BILLING_PLANS names), validated with pydantic so a typo in a plan is an error at
load, not a wrong invoice.

Each plan has a monthly and an annual price. At Stripe, a plan is a Product whose id is
`hub_<key>` (Stripe accepts ids chosen by the caller, which makes creating it idempotent)
and each price is found by its `lookup_key`, `hub_<key>_<interval>`: prices cannot change
amount at Stripe, so a new amount is a new Price that takes over the lookup key
(hub/billing/catalog_sync.py). The hub never stores Stripe's price ids: it asks by lookup
key, so the file stays the one source of the catalog.
"""

from __future__ import annotations

import os
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, ValidationError as PydanticError, field_validator, model_validator

from hub.errors import ValidationError
from hub.providers import registry

PLANS_VAR = "HUB_BILLING_PLANS"
DEFAULT_FILE = Path(__file__).with_name("plans.toml")
INTERVALS: tuple[Literal["month", "year"], ...] = ("month", "year")


class Plan(BaseModel, frozen=True):
    key: str = Field(pattern=r"^[a-z][a-z0-9_]{0,30}$")
    name: str = Field(min_length=1, max_length=60)
    monthly: int = Field(ge=0, description="price per month, minor units")
    annual: int = Field(ge=0, description="price per year, minor units")
    max_active_integrations: int = Field(ge=0, description="0: no cap")
    providers: frozenset[str]

    @property
    def product_id(self) -> str:
        return f"hub_{self.key}"

    def lookup_key(self, interval: str) -> str:
        return f"hub_{self.key}_{interval}"

    def amount(self, interval: str) -> int:
        return self.monthly if interval == "month" else self.annual

    def allows(self, provider: str) -> bool:
        return provider in self.providers

    def caps(self, active: int) -> bool:
        """Whether `active` integrations are over this plan's cap."""
        return bool(self.max_active_integrations) and active > self.max_active_integrations


class Catalog(BaseModel, frozen=True):
    currency: str = Field(pattern=r"^[a-z]{3}$")
    trial_days: int = Field(ge=0, le=730)
    plans: tuple[Plan, ...] = Field(alias="plan", min_length=1)

    @field_validator("plans")
    @classmethod
    def _unique(cls, plans: tuple[Plan, ...]) -> tuple[Plan, ...]:
        keys = [p.key for p in plans]
        if len(set(keys)) != len(keys):
            raise ValueError(f"plan keys repeat: {sorted(k for k in keys if keys.count(k) > 1)}")
        return plans

    @model_validator(mode="after")
    def _known_providers(self) -> "Catalog":
        known = set(registry.providers())
        for plan in self.plans:
            unknown = sorted(plan.providers - known)
            if unknown:
                raise ValueError(f"plan {plan.key} names unknown providers {unknown}")
        return self

    def get(self, key: str) -> Plan:
        for plan in self.plans:
            if plan.key == key:
                return plan
        raise ValidationError(f"no plan {key!r}; the plans are {', '.join(p.key for p in self.plans)}")

    def by_lookup_key(self, lookup_key: str | None) -> tuple[Plan, str] | None:
        """(plan, interval) of a Stripe price's lookup key, or None for a price not ours."""
        for plan in self.plans:
            for interval in INTERVALS:
                if plan.lookup_key(interval) == lookup_key:
                    return plan, interval
        return None

    def cheapest_allowing(self, provider: str, active: int) -> Plan | None:
        """The least expensive plan that allows `provider` with `active` integrations: what a
        refusal suggests."""
        fitting = [p for p in self.plans if p.allows(provider) and not p.caps(active)]
        return min(fitting, key=lambda p: p.monthly, default=None)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The plans of `path`, else of HUB_BILLING_PLANS, else the shipped file."""
    chosen = Path(path or os.environ.get(PLANS_VAR) or DEFAULT_FILE)
    try:
        raw = tomllib.loads(chosen.read_text())
    except OSError as exc:
        raise ValidationError(f"cannot read the plans file {chosen}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ValidationError(f"the plans file {chosen} is not TOML: {exc}") from None
    try:
        return Catalog.model_validate(raw)
    except PydanticError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ValidationError(f"the plans file {chosen} is not valid: {problems}") from None


@lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> Catalog:
    return load_catalog(path)


def catalog() -> Catalog:
    """The configured catalog, read again when its file changes."""
    path = Path(os.environ.get(PLANS_VAR) or DEFAULT_FILE)
    try:
        mtime = path.stat().st_mtime
    except OSError:
        mtime = 0.0
    return _cached(str(path), mtime)
