"""Encrypted config and credentials in the real database, and key rotation."""

import json

import pytest
import sqlalchemy as sa

from hub import integrations as store
from hub.crypto import Keyring, generate_key
from hub.errors import SecretKeyError
from hub.stored_secrets import rotate
from hub.schema import integration, webhook_endpoint

CREDS = {"client_id": "cid-visible-ok", "client_secret": "plain-secret-XYZ-123456", "refresh_token": "plain-refresh-ABC-987654"}
CONFIG = {"realm_id": "realm-4242-plain-0001"}


def _add(conn, ring, company_id, name="QB"):
    return store.add_integration(conn, ring, company_id=company_id, provider="quickbooks", name=name, config=CONFIG, credentials=CREDS, active=True)


def _raw_rows(engine) -> str:
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT row_to_json(i)::text FROM integration i")).scalars().all()
    return "\n".join(rows)


def test_round_trip_and_no_plaintext_in_the_database(clean_db):
    ring = Keyring([generate_key()])
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        new_id = _add(conn, ring, company_id)
    raw = _raw_rows(clean_db)
    for secret in (*CREDS.values(), *CONFIG.values()):
        assert secret not in raw
    assert ring.primary_kid in raw  # every ciphertext is tagged with its key id
    with clean_db.connect() as conn:
        item = store.get_integration(conn, ring, new_id)
    assert item.credentials.reveal() == CREDS and item.config == CONFIG
    assert "plain-secret" not in repr(item) and "realm-4242" not in repr(item)  # SecretDict reprs


def _kids(engine) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(integration.c.config, integration.c.credentials)).all()
        secrets = conn.execute(sa.select(webhook_endpoint.c.secret).where(webhook_endpoint.c.secret.is_not(None))).scalars().all()
    return {env["kid"] for row in rows for env in row} | {env["kid"] for env in secrets}


def test_rotation_re_encrypts_every_secret(clean_db):
    old, new = generate_key(), generate_key()
    old_ring, rotating = Keyring([old]), Keyring([new, old])
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        ids = [_add(conn, old_ring, company_id, f"QB {n}") for n in range(3)]
        conn.execute(
            sa.insert(webhook_endpoint).values(
                company_id=company_id, direction="outbound", name="hook", url="https://example.invalid/h",
                secret=old_ring.encrypt("whsec_plain", "webhook_endpoint.secret"),
            )
        )
    assert _kids(clean_db) == {old_ring.primary_kid}
    with clean_db.connect() as conn:  # during rotation both keys read everything
        assert all(store.get_integration(conn, rotating, i).credentials.reveal() == CREDS for i in ids)

    report = rotate(clean_db, rotating)
    assert (report.examined, report.rotated) == (7, 7)
    assert _kids(clean_db) == {rotating.primary_kid}
    with clean_db.connect() as conn:  # the old key can now be dropped
        new_only = Keyring([new])
        assert all(store.get_integration(conn, new_only, i).credentials.reveal() == CREDS for i in ids)
    assert rotate(clean_db, rotating).rotated == 0  # idempotent


def test_rotation_with_a_missing_old_key_writes_nothing(clean_db):
    key_a = generate_key()
    ring_a, ring_b = Keyring([key_a]), Keyring([generate_key(), key_a])  # b newest, a still held
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        _add(conn, ring_a, company_id, "under a")
        _add(conn, ring_b, company_id, "under b")
    before = _raw_rows(clean_db)
    # the new keyring knows key a but has lost key b: rows under a would rotate, the row
    # under b cannot; the whole rotation must roll back
    lost_b = Keyring([generate_key(), key_a])
    with pytest.raises(SecretKeyError, match="nothing was rotated"):
        rotate(clean_db, lost_b)
    assert _raw_rows(clean_db) == before


def test_wrong_key_fails_cleanly_on_read(clean_db):
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        new_id = _add(conn, Keyring([generate_key()]), company_id)
    with clean_db.connect() as conn, pytest.raises(SecretKeyError) as info:
        store.get_integration(conn, Keyring([generate_key()]), new_id)
    assert "HUB_SECRET_KEYS" in str(info.value)
    assert "plain-secret" not in str(info.value)


def test_envelopes_are_plain_json(clean_db):
    """The stored form is documented JSON (v, kid, n, ct): readable by any future tool."""
    ring = Keyring([generate_key()])
    with clean_db.begin() as conn:
        company_id = store.create_company(conn, "Acme")
        _add(conn, ring, company_id)
    with clean_db.connect() as conn:
        stored = conn.execute(sa.select(integration.c.credentials)).scalar_one()
    assert set(stored) == {"v", "kid", "n", "ct"}
    json.dumps(stored)
