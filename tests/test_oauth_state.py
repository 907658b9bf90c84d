"""The OAuth state store (hub/connect/oauth_state.py) against PostgreSQL: single use under
concurrency, bound to session/user/company, 10-minute expiry, the PKCE verifier and the
pending grant encrypted at rest, and the flow's pure parts (authorize URL, app settings)."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa

from hub import integrations as store
from hub.auth import users
from hub.connect import oauth_flow, oauth_state
from hub.connect.oauth_state import Owner
from hub.crypto import Keyring
from hub.providers import registry
from hub.schema import oauth_state as table


def _owner(engine) -> Owner:
    with engine.begin() as conn:
        company = store.create_company(conn, "Acme")
        user = users.create_user(conn, "admin@acme.example", "a long enough password")
        users.grant(conn, user, company, "admin")
    return Owner("session-one", user, company)


def _begin(engine, keyring, owner, state="state-1", verifier=None) -> int:
    with engine.begin() as conn:
        return oauth_state.begin(conn, keyring, state=state, owner=owner, provider="xero", code_verifier=verifier)


def test_of_many_concurrent_callbacks_with_one_state_exactly_one_consumes_it(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    owner = _owner(clean_db)
    _begin(clean_db, keyring, owner, verifier="v" * 60)
    barrier, results = threading.Barrier(8), []

    def consumer():
        with clean_db.begin() as conn:
            barrier.wait()
            results.append(oauth_state.consume(conn, keyring, "state-1", owner))

    threads = [threading.Thread(target=consumer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [r for r in results if r is not None]
    assert len(results) == 8 and len(winners) == 1
    assert winners[0].code_verifier == "v" * 60 and winners[0].provider == "xero"
    with clean_db.connect() as conn:
        assert "already used" in oauth_state.why_not(conn, "state-1", owner)


def test_the_second_consumer_waits_for_the_first_and_then_gets_nothing(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    owner = _owner(clean_db)
    _begin(clean_db, keyring, owner)
    first = clean_db.connect()
    tx = first.begin()
    assert oauth_state.consume(first, keyring, "state-1", owner) is not None  # row locked, not committed
    second_result = []
    second = threading.Thread(target=lambda: second_result.append(_consume(clean_db, keyring, owner)))
    second.start()
    second.join(1.0)
    assert second.is_alive()  # blocked on the first one's row lock
    tx.commit()
    first.close()
    second.join(10)
    assert second_result == [None]


def _consume(engine, keyring, owner):
    with engine.begin() as conn:
        return oauth_state.consume(conn, keyring, "state-1", owner)


def test_another_session_user_or_company_cannot_consume_and_does_not_burn_it(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    owner = _owner(clean_db)
    _begin(clean_db, keyring, owner)
    for stranger in (Owner("session-two", owner.user_id, owner.company_id), Owner(owner.session_id, owner.user_id + 1, owner.company_id),
                     Owner(owner.session_id, owner.user_id, owner.company_id + 1)):
        assert _consume(clean_db, keyring, stranger) is None
        with clean_db.connect() as conn:
            assert "another browser session" in oauth_state.why_not(conn, "state-1", stranger)
    assert _consume(clean_db, keyring, owner) is not None


def test_a_state_expires_after_ten_minutes_and_unknown_ones_are_named(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    owner = _owner(clean_db)
    _begin(clean_db, keyring, owner)
    with clean_db.begin() as conn:
        conn.execute(sa.update(table).values(created_at=sa.func.now() - sa.text("interval '601 seconds'")))
    assert _consume(clean_db, keyring, owner) is None
    with clean_db.connect() as conn:
        assert "expired" in oauth_state.why_not(conn, "state-1", owner)
        assert "unknown state" in oauth_state.why_not(conn, "never-issued", owner)


def test_secrets_are_stored_hashed_or_encrypted_and_the_pending_grant_is_taken_once(clean_db, secret_keys):
    keyring = Keyring(secret_keys)
    owner = _owner(clean_db)
    flow_id = _begin(clean_db, keyring, owner, verifier="pkce-verifier-" + "x" * 40)
    with clean_db.connect() as conn:
        raw = str(conn.execute(sa.select(table)).one()._mapping)
    assert "state-1" not in raw and "session-one" not in raw and "pkce-verifier" not in raw
    flow = _consume(clean_db, keyring, owner)
    with clean_db.begin() as conn:
        oauth_state.hold(conn, keyring, flow.id, {"token": {"refresh_token": "rt-secret"}, "accounts": []})
        assert "rt-secret" not in str(conn.execute(sa.select(table.c.pending)).scalar_one())
        assert oauth_state.peek_pending(conn, keyring, flow_id, Owner("other", owner.user_id, owner.company_id)) is None
        assert oauth_state.peek_pending(conn, keyring, flow_id, owner)[1]["token"]["refresh_token"] == "rt-secret"
    with clean_db.begin() as conn:
        taken = oauth_state.take_pending(conn, keyring, flow_id, owner)
    assert taken is not None and taken[1]["token"]["refresh_token"] == "rt-secret"
    with clean_db.begin() as conn:
        assert oauth_state.take_pending(conn, keyring, flow_id, owner) is None
        assert conn.execute(sa.select(table.c.pending)).scalar_one() is None  # erased once taken


def test_the_authorize_url_and_the_app_from_the_environment(clean_db, secret_keys, monkeypatch):
    xero, doordash = registry.get("xero"), registry.get("doordash")
    assert oauth_flow.app_for(xero, {}) is None and oauth_flow.app_for(doordash, {"HUB_OAUTH_DOORDASH_CLIENT_ID": "x"}) is None
    env = {"HUB_OAUTH_XERO_CLIENT_ID": "cid", "HUB_OAUTH_XERO_CLIENT_SECRET": "sec", "HUB_OAUTH_XERO_BASE_URL": "http://127.0.0.1:9"}
    app = oauth_flow.app_for(xero, env)
    assert app.url("https://identity.xero.com/connect/token") == "http://127.0.0.1:9/connect/token"
    assert "sec" not in repr(app)
    keyring = Keyring(secret_keys)
    owner = _owner(clean_db)
    url = oauth_flow.start(clean_db, keyring, xero, app, owner, "http://hub.example/settings/integrations/oauth/callback")
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.netloc == "127.0.0.1:9" and parts.path == "/identity/connect/authorize"
    assert query["response_type"] == "code" and query["client_id"] == "cid" and query["code_challenge_method"] == "S256"
    assert "offline_access" in query["scope"].split(" ") and len(query["state"]) >= 43
    with clean_db.connect() as conn:
        row = conn.execute(sa.select(table)).one()
    verifier = keyring.decrypt(row.code_verifier, oauth_state.VERIFIER_PURPOSE)["v"]
    assert oauth_flow._s256(verifier) == query["code_challenge"] and 43 <= len(verifier) <= 128
    assert row.state_hash == oauth_state.digest(query["state"])
