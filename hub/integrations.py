"""Companies and integrations: the tenant rows and their encrypted connection settings.

All functions take an open SQLAlchemy connection so callers decide the transaction.
Config and credentials are encrypted on the way in and decrypted on the way out with a
`Keyring`; credentials come back as a `SecretDict`, whose repr is masked.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from hub.billing.entitlements import EntitlementError, check_activation
from hub.providers import registry
from hub.crypto import Keyring, SecretDict
from hub.errors import NotFoundError, ValidationError
from hub.schema import company, integration
from hub.stored_secrets import assert_keyring_covers, purpose

CONFIG_PURPOSE = purpose(integration, "config")
CREDENTIALS_PURPOSE = purpose(integration, "credentials")


@dataclass(frozen=True)
class Integration:
    id: int
    company_id: int
    name: str
    provider: str
    integration_type: str
    is_active: bool
    status: str
    config: SecretDict  # config may hold secrets too (a webhook URL with a token): masked repr
    credentials: SecretDict
    last_sync_at: datetime | None
    error_message: str | None
    created_at: datetime

    @property
    def partition_key(self) -> str:
        return partition_key(self.provider, self.id)


def partition_key(provider: str, integration_id: int) -> str:
    """The Dagster partition key of an integration: readable, and stable across renames."""
    return f"{provider}-{integration_id}"


def integration_id_from_partition(key: str) -> int:
    try:
        return int(key.rsplit("-", 1)[1])
    except (IndexError, ValueError):
        raise ValidationError(f"'{key}' is not an integration partition key (<provider>-<id>)") from None


def parse_json_object(text: str, what: str) -> dict[str, Any]:
    """Parse a JSON object given on the command line; the error never echoes the text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{what} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, dict):
        raise ValidationError(f"{what} must be a JSON object, not {type(value).__name__}")
    return value


# ---- companies -----------------------------------------------------------------------
def create_company(conn: Connection, name: str, timezone: str = "UTC") -> int:
    name = name.strip()
    if not name or not name.isprintable():
        raise ValidationError("company name must be non-blank printable text")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown timezone '{timezone}' (use an IANA name such as America/New_York)") from None
    try:
        with conn.begin_nested():
            return conn.scalar(sa.insert(company).values(name=name, timezone=timezone).returning(company.c.id))
    except IntegrityError:
        raise ValidationError(f"a company named '{name}' already exists") from None


MAX_ID = 2**63 - 1


def _as_id(value: int | str, what: str) -> int:
    number = int(value)
    if not 0 < number <= MAX_ID:
        raise NotFoundError(f"no {what} {value}")
    return number


def find_company(conn: Connection, ref: str | int) -> sa.Row:
    """A company by id or by exact name."""
    query = sa.select(company)
    if isinstance(ref, int) or str(ref).isdigit():
        query = query.where(company.c.id == _as_id(ref, "company"))
    else:
        query = query.where(company.c.name == ref)
    row = conn.execute(query).first()
    if row is None:
        raise NotFoundError(f"no company '{ref}'")
    return row


def list_companies(conn: Connection) -> list[sa.Row]:
    return list(conn.execute(sa.select(company).order_by(company.c.id)))


# ---- integrations --------------------------------------------------------------------
def add_integration(
    conn: Connection,
    keyring: Keyring,
    *,
    company_id: int,
    provider: str,
    name: str | None = None,
    config: Mapping[str, Any] | None = None,
    credentials: Mapping[str, Any] | None = None,
    active: bool = False,
) -> int:
    """Validate against the provider spec, encrypt, insert; return the new id.

    A new integration is inactive (not synced, no partition) until its connection is
    established (`hub.connection_check.check_connection` passes) or it is enabled: `active`
    enables it at once, for callers who already know it works (`hub integration add --enable`)."""
    config, credentials = dict(config or {}), dict(credentials or {})
    spec = registry.validate(provider, config, credentials)
    name = (spec.display_name if name is None else name).strip()
    if not name:
        raise ValidationError("integration name must not be blank")
    assert_keyring_covers(conn, keyring)
    if active:
        check_activation(conn, company_id, spec.name)
    values = dict(
        company_id=company_id,
        name=name,
        provider=spec.name,
        integration_type=spec.category,
        config=keyring.encrypt(config, CONFIG_PURPOSE),
        credentials=keyring.encrypt(credentials, CREDENTIALS_PURPOSE),
        is_active=active,
    )
    try:
        with conn.begin_nested():
            return conn.scalar(sa.insert(integration).values(**values).returning(integration.c.id))
    except IntegrityError as exc:
        if "uq_integration_company_id_name" in str(exc.orig):
            raise ValidationError(f"company {company_id} already has an integration named '{name}'") from None
        if "fk_integration_company_id_company" in str(exc.orig):
            raise NotFoundError(f"no company {company_id}") from None
        raise


def get_integration(conn: Connection, keyring: Keyring, integration_id: int) -> Integration:
    row = conn.execute(sa.select(integration).where(integration.c.id == _as_id(integration_id, "integration"))).first()
    if row is None:
        raise NotFoundError(f"no integration {integration_id}")
    return _decrypt_row(row, keyring)


def _decrypt_row(row: sa.Row, keyring: Keyring) -> Integration:
    m = row._mapping
    return Integration(
        id=m["id"],
        company_id=m["company_id"],
        name=m["name"],
        provider=m["provider"],
        integration_type=m["integration_type"],
        is_active=m["is_active"],
        status=m["status"],
        config=SecretDict(keyring.decrypt(m["config"], CONFIG_PURPOSE)),
        credentials=SecretDict(keyring.decrypt(m["credentials"], CREDENTIALS_PURPOSE)),
        last_sync_at=m["last_sync_at"],
        error_message=m["error_message"],
        created_at=m["created_at"],
    )


SUMMARY_COLUMNS = (
    integration.c.id,
    integration.c.company_id,
    integration.c.name,
    integration.c.provider,
    integration.c.integration_type,
    integration.c.is_active,
    integration.c.status,
    integration.c.last_sync_at,
    integration.c.error_message,
)


def list_integrations(conn: Connection, company_id: int | None = None, active_only: bool = False) -> list[sa.Row]:
    """Integration rows without their encrypted columns (listing needs no key)."""
    query = sa.select(*SUMMARY_COLUMNS).order_by(integration.c.id)
    if company_id is not None:
        query = query.where(integration.c.company_id == company_id)
    if active_only:
        query = query.where(integration.c.is_active)
    return list(conn.execute(query))


def update_config(conn: Connection, keyring: Keyring, integration_id: int, changes: Mapping[str, Any]) -> dict[str, Any]:
    """Merge `changes` into the integration's config (a None value removes the key);
    re-validated against the provider's required fields; returns the new config."""
    row = conn.execute(
        sa.select(integration.c.provider, integration.c.config, integration.c.credentials)
        .where(integration.c.id == _as_id(integration_id, "integration"))
        .with_for_update(key_share=True)
    ).first()
    if row is None:
        raise NotFoundError(f"no integration {integration_id}")
    config = keyring.decrypt(row.config, CONFIG_PURPOSE)
    for key, value in changes.items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = value
    registry.validate(row.provider, config, keyring.decrypt(row.credentials, CREDENTIALS_PURPOSE))
    assert_keyring_covers(conn, keyring)
    conn.execute(
        sa.update(integration).where(integration.c.id == integration_id).values(
            config=keyring.encrypt(config, CONFIG_PURPOSE), updated_at=sa.func.now())
    )
    return config


def set_active(conn: Connection, integration_id: int, active: bool) -> None:
    """Enable or disable; a disabled integration shows as disconnected and is not synced.
    Enabling is refused (EntitlementError) when the company's plan does not allow it."""
    if active:
        _entitled(conn, integration_id)
    values: dict[str, Any] = {"is_active": active, "updated_at": sa.func.now()}
    values["status"] = "pending" if active else "disconnected"
    done = conn.execute(sa.update(integration).where(integration.c.id == _as_id(integration_id, "integration")).values(**values))
    if done.rowcount == 0:
        raise NotFoundError(f"no integration {integration_id}")


def activate_if_new(conn: Connection, integration_id: int) -> bool:
    """Its connection was just established: an integration that was never active (status
    `pending`) becomes active and `connected`. One an admin disabled (`disconnected`) stays
    disabled: a passing check does not overrule them. True when it was activated. One the
    company's plan does not allow stays inactive, with the reason as its last error."""
    try:
        _entitled(conn, integration_id)
    except EntitlementError as exc:
        conn.execute(sa.update(integration).where(integration.c.id == integration_id, sa.not_(integration.c.is_active))
                     .values(error_message=str(exc), updated_at=sa.func.now()))
        return False
    done = conn.execute(
        sa.update(integration)
        .where(integration.c.id == integration_id, sa.not_(integration.c.is_active), integration.c.status == "pending")
        .values(is_active=True, status="connected", error_message=None, updated_at=sa.func.now())
    )
    return done.rowcount == 1


def active_partition_keys(conn: Connection) -> list[str]:
    rows = conn.execute(
        sa.select(integration.c.provider, integration.c.id).where(integration.c.is_active).order_by(integration.c.id)
    )
    return [partition_key(p, i) for p, i in rows]


def _entitled(conn: Connection, integration_id: int) -> None:
    """The plan check of an integration about to become active (nothing to check when it is
    active already)."""
    row = conn.execute(sa.select(integration.c.company_id, integration.c.provider, integration.c.is_active)
                       .where(integration.c.id == _as_id(integration_id, "integration"))).first()
    if row is None:
        raise NotFoundError(f"no integration {integration_id}")
    if not row.is_active:
        check_activation(conn, row.company_id, row.provider, integration_id)


def _locked(conn: Connection, integration_id: int) -> sa.Row:
    row = conn.execute(
        sa.select(integration.c.provider, integration.c.config, integration.c.credentials)
        .where(integration.c.id == _as_id(integration_id, "integration"))
        .with_for_update(key_share=True)
    ).first()
    if row is None:
        raise NotFoundError(f"no integration {integration_id}")
    return row


def update_connection(conn: Connection, keyring: Keyring, integration_id: int, *, config: Mapping[str, Any] | None = None,
                      credentials: Mapping[str, Any] | None = None, connected: bool = False) -> None:
    """Merge changes into config and credentials (a None value removes the key), validated
    against the provider's required fields before anything is written. `connected`: the
    connection was just (re)made, so the integration is marked connected and active and its
    last error is cleared."""
    row = _locked(conn, integration_id)
    merged = []
    for current, changes, what in ((row.config, config, CONFIG_PURPOSE), (row.credentials, credentials, CREDENTIALS_PURPOSE)):
        value = keyring.decrypt(current, what)
        for key, new in (changes or {}).items():
            if new is None:
                value.pop(key, None)
            else:
                value[key] = new
        merged.append(value)
    registry.validate(row.provider, merged[0], merged[1])
    assert_keyring_covers(conn, keyring)
    values: dict[str, Any] = dict(config=keyring.encrypt(merged[0], CONFIG_PURPOSE),
                                  credentials=keyring.encrypt(merged[1], CREDENTIALS_PURPOSE), updated_at=sa.func.now())
    if connected:
        _entitled(conn, integration_id)
        values.update(status="connected", is_active=True, error_message=None)
    conn.execute(sa.update(integration).where(integration.c.id == integration_id).values(**values))


def mark_connected(conn: Connection, integration_id: int) -> None:
    _entitled(conn, integration_id)
    conn.execute(sa.update(integration).where(integration.c.id == _as_id(integration_id, "integration")).values(
        status="connected", is_active=True, error_message=None, updated_at=sa.func.now()))


def drop_connection(conn: Connection, keyring: Keyring, integration_id: int, *, credentials: tuple[str, ...],
                    config: tuple[str, ...] = ()) -> None:
    """A disconnect: the named credentials (the tokens) and config keys are removed, not
    validated (a disconnected integration has no grant by design), and the integration is
    marked disconnected and inactive, so nothing syncs it until it is connected again."""
    row = _locked(conn, integration_id)
    kept_credentials = {k: v for k, v in keyring.decrypt(row.credentials, CREDENTIALS_PURPOSE).items() if k not in credentials}
    kept_config = {k: v for k, v in keyring.decrypt(row.config, CONFIG_PURPOSE).items() if k not in config}
    assert_keyring_covers(conn, keyring)
    conn.execute(sa.update(integration).where(integration.c.id == integration_id).values(
        config=keyring.encrypt(kept_config, CONFIG_PURPOSE), credentials=keyring.encrypt(kept_credentials, CREDENTIALS_PURPOSE),
        status="disconnected", is_active=False, updated_at=sa.func.now()))
