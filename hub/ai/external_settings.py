"""The company's optional external model (`ai_external_setting`): any OpenAI-compatible
chat-completions API (base URL, API key, model), its prices per 1,000 input and output tokens,
and a monthly budget that is a hard cap (hub/ai/external_budget.py).

The API key is stored encrypted (hub/crypto.py, under HUB_SECRET_KEYS; key rotation walks it,
hub/stored_secrets.py) and leaves this module only as an `ApiKey`, whose repr and str are
masked: it reaches the provider's Authorization header and nothing else. Saving with a blank
key keeps the stored one, as every secret field of the settings pages does.

`save` refuses a bad value with a sentence (ValidationError) and stores nothing; turning the
model on needs everything it uses: a base URL, a key, a model name and a budget above 0, and a
base URL whose host resolves to public addresses only, unless HUB_OUTBOUND_ALLOW admits them
(`destination_problem`, the outbound webhooks' policy, hub/outbound/ssrf.py: a company admin's
URL must not make the hub probe its own network). The scorer checks again before every call.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.outbound import ssrf
from hub.schema import ai_external_setting
from hub.stored_secrets import assert_keyring_covers, purpose

KEY_PURPOSE = purpose(ai_external_setting, "api_key")
MAX_URL, MAX_KEY, MAX_PRICE, MAX_BUDGET = 500, 500, Decimal(1000), Decimal(1_000_000)
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,99}")


class ApiKey:
    """The external model's API key: `reveal()` for the one place that sends it; masked otherwise."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(****)"

    __str__ = __repr__


@dataclass(frozen=True)
class ExternalSettings:
    """What the page shows and the scorer reads; never the key itself (`key_set` only)."""

    company_id: int
    enabled: bool = False
    base_url: str = ""
    model: str = ""
    price_input_per_1k: Decimal = Decimal(0)
    price_output_per_1k: Decimal = Decimal(0)
    monthly_budget: Decimal = Decimal(0)
    key_set: bool = False
    notified_month: date | None = None

    @property
    def usable(self) -> bool:
        """On, and with everything a call needs."""
        return self.enabled and bool(self.base_url and self.model and self.key_set) and self.monthly_budget > 0

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""


def read(conn: Connection, company_id: int) -> ExternalSettings:
    row = conn.execute(sa.select(ai_external_setting).where(ai_external_setting.c.company_id == company_id)).mappings().first()
    if row is None:
        return ExternalSettings(company_id)
    return ExternalSettings(company_id, row["enabled"], row["base_url"], row["model"], row["price_input_per_1k"],
                            row["price_output_per_1k"], row["monthly_budget"], row["api_key"] is not None, row["notified_month"])


def api_key(conn: Connection, keyring: Keyring, company_id: int) -> ApiKey | None:
    envelope = conn.scalar(sa.select(ai_external_setting.c.api_key).where(ai_external_setting.c.company_id == company_id))
    return None if envelope is None else ApiKey(str(keyring.decrypt(envelope, KEY_PURPOSE)))


def _money(name: str, value: Any, ceiling: Decimal) -> Decimal:
    text = "" if value is None else str(value).strip()
    if not text:
        raise ValidationError(f"the {name} is needed (a number, 0 or more)")
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise ValidationError(f"the {name} must be a number, not '{text[:20]}'") from None
    if not number.is_finite() or number < 0:
        raise ValidationError(f"the {name} must be 0 or more, not {text[:20]}")
    if number > ceiling:
        raise ValidationError(f"the {name} must be at most {ceiling:,}, not {text[:20]}")
    return number


def check_base_url(value: str) -> str:
    """The API's base URL as the SDK wants it (`https://api.openai.com/v1`), or a sentence why not."""
    url = (value or "").strip().rstrip("/")
    if not url:
        return ""
    if len(url) > MAX_URL:
        raise ValidationError(f"the base URL is longer than {MAX_URL} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("the base URL must be an http(s) address such as https://api.openai.com/v1")
    if parts.username or parts.password:
        raise ValidationError("the base URL must not carry a user or password: the API key goes in its own field")
    if parts.query or parts.fragment:
        raise ValidationError("the base URL must not have a query or fragment (it ends before /chat/completions)")
    return url


def destination_problem(base_url: str) -> str | None:
    """Why the hub must not connect to this base URL (see the module docstring), or None."""
    parts = urlsplit(base_url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    policy = ssrf.AddressPolicy.from_env()
    try:
        ssrf.check_literal(host, policy)
    except ssrf.BlockedAddressError:
        return f"the base URL's host {host} is a private or local address; the hub connects only to public ones " \
               f"(an operator may allow it with {ssrf.ALLOW_VAR})"
    addresses = ssrf.resolve_now(host, port)
    if not addresses:
        return f"the base URL's host {host} does not resolve"
    for address in addresses:
        if policy.check(address) is not None:
            return f"the base URL's host {host} resolves to a private or local address ({address}); the hub connects " \
                   f"only to public ones (an operator may allow it with {ssrf.ALLOW_VAR})"
    return None


def save(conn: Connection, keyring: Keyring, company_id: int, *, enabled: bool, base_url: str, model: str,
         price_input_per_1k: Any, price_output_per_1k: Any, monthly_budget: Any, api_key: str | None = None) -> ExternalSettings:
    """Store the external model's settings (a blank `api_key` keeps the stored key); the result."""
    url = check_base_url(base_url)
    model = (model or "").strip()
    if model and not _MODEL.fullmatch(model):
        raise ValidationError(f"'{model[:40]}' is not a model name (letters, digits and . _ - : / @ +, at most 100)")
    prices = (_money("price per 1,000 input tokens", price_input_per_1k, MAX_PRICE),
              _money("price per 1,000 output tokens", price_output_per_1k, MAX_PRICE))
    budget = _money("monthly budget", monthly_budget, MAX_BUDGET)
    key = (api_key or "").strip()
    if len(key) > MAX_KEY or any(c.isspace() for c in key):
        raise ValidationError(f"the API key must be one word of at most {MAX_KEY} characters")
    now = read(conn, company_id)
    if enabled:
        missing = [what for what, there in (("a base URL", url), ("a model", model), ("an API key", key or now.key_set)) if not there]
        if missing:
            raise ValidationError(f"the external model needs {', '.join(missing)} to be turned on")
        if budget <= 0:
            raise ValidationError("the external model needs a monthly budget above 0 to be turned on: calls stop at it")
        blocked = destination_problem(url)
        if blocked:
            raise ValidationError(blocked)
    values: dict[str, Any] = {"enabled": bool(enabled), "base_url": url, "model": model, "price_input_per_1k": prices[0],
                              "price_output_per_1k": prices[1], "monthly_budget": budget}
    if key:
        assert_keyring_covers(conn, keyring)
        values["api_key"] = keyring.encrypt(key, KEY_PURPOSE)
    conn.execute(insert(ai_external_setting).values(company_id=company_id, **values)
                 .on_conflict_do_update(index_elements=["company_id"], set_={**values, "updated_at": sa.func.now()}))
    return read(conn, company_id)
