"""The settings pages' users (hub/auth) against real PostgreSQL: argon2id hashes and their
rehash, case-insensitive emails, memberships and roles, sign-in with the throttle per
account and per address, and the `hub user` commands."""

from __future__ import annotations

import time

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from typer.testing import CliRunner

from hub import integrations as store
from hub.auth import passwords, throttle, users
from hub.auth.sign_in import WRONG, sign_in
from hub.auth.throttle import ThrottlePolicy
from hub.cli import app
from hub.errors import NotFoundError, ValidationError
from hub.schema import app_user, login_attempt
from tests.conftest import count

PASSWORD = "correct horse battery"
runner = CliRunner()


@pytest.fixture
def acme(clean_db):
    with clean_db.begin() as conn:
        acme_id = store.create_company(conn, "Acme")
        bella_id = store.create_company(conn, "Bella")
        user_id = users.create_user(conn, "Ann@Example.com", PASSWORD)
        users.grant(conn, user_id, acme_id, "admin")
    return clean_db, acme_id, bella_id, user_id


def test_passwords_are_argon2id_and_an_old_hash_is_redone_at_sign_in(acme):
    engine, *_ , user_id = acme
    with engine.connect() as conn:
        stored = conn.scalar(sa.select(app_user.c.password_hash).where(app_user.c.id == user_id))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(sa.update(app_user).where(app_user.c.id == user_id).values(password_hash=weak))
        assert users.authenticate(conn, "ann@example.com", PASSWORD) is not None
        renewed = conn.scalar(sa.select(app_user.c.password_hash).where(app_user.c.id == user_id))
    assert renewed != weak and not passwords.hasher().check_needs_rehash(renewed)
    assert passwords.verify(renewed, PASSWORD) == (True, False)
    assert passwords.verify("not a hash", PASSWORD) == (False, False)


def test_emails_are_one_account_whatever_their_case(acme):
    engine, acme_id, bella_id, user_id = acme
    with engine.begin() as conn:
        assert users.find_user(conn, "  ANN@example.COM ").id == user_id
        with pytest.raises(ValidationError, match="already exists"):
            users.create_user(conn, "ann@EXAMPLE.com", PASSWORD)
        with pytest.raises(ValidationError, match="not an email"):
            users.create_user(conn, "ann-at-example", PASSWORD)
        with pytest.raises(ValidationError, match="at least"):
            users.create_user(conn, "bob@example.com", "short")
    with pytest.raises(sa.exc.IntegrityError):  # the database holds the rule too
        with engine.begin() as conn:
            conn.execute(sa.insert(app_user).values(email="Mixed@Example.com", password_hash="x"))


def test_memberships_and_roles(acme):
    engine, acme_id, bella_id, user_id = acme
    with engine.begin() as conn:
        assert users.grant(conn, user_id, bella_id, "viewer") == "added"
        assert users.grant(conn, user_id, bella_id, "viewer") == "unchanged"
        assert [(m.company_name, m.role) for m in users.memberships(conn, user_id)] == [("Acme", "admin"), ("Bella", "viewer")]
        assert users.grant(conn, user_id, bella_id, "admin") == "changed"
        with pytest.raises(ValidationError, match="unknown role"):
            users.grant(conn, user_id, bella_id, "owner")
        listed = users.list_users(conn, bella_id)
    assert [(u.email, u.roles) for u in listed] == [("ann@example.com", (("Acme", "admin"), ("Bella", "admin")))]


def test_sign_in_answers_the_same_for_unknown_email_wrong_password_and_disabled_user(acme):
    engine, *_ = acme
    with engine.begin() as conn:
        assert sign_in(conn, "ann@example.com", PASSWORD, "10.0.0.1").user is not None
        assert sign_in(conn, "ann@example.com", "wrong password", "10.0.0.1").message == WRONG
        assert sign_in(conn, "nobody@example.com", PASSWORD, "10.0.0.1").message == WRONG
        users.set_active(conn, "ann@example.com", False)
        assert sign_in(conn, "ann@example.com", PASSWORD, "10.0.0.1").message == WRONG
        with pytest.raises(NotFoundError):
            users.set_active(conn, "nobody@example.com", False)


def test_an_unknown_email_costs_an_argon2_verification_too(acme):
    engine, *_ = acme
    passwords.dummy_hash()  # made once per process, not counted

    def timed(email: str) -> float:
        with engine.begin() as conn:
            start = time.perf_counter()
            users.authenticate(conn, email, "wrong password")
            return time.perf_counter() - start

    known = min(timed("ann@example.com") for _ in range(3))
    unknown = min(timed("nobody@example.com") for _ in range(3))
    assert unknown > known / 3, (known, unknown)  # without the dummy verification: ~100x faster


def test_five_failures_lock_the_account_even_for_the_right_password(acme):
    engine, *_ = acme
    with engine.begin() as conn:
        for _ in range(5):
            assert sign_in(conn, "ann@example.com", "wrong password", "10.0.0.1").lockout is None
        locked = sign_in(conn, "ANN@example.com", PASSWORD, "10.0.0.2")  # another address, the right password
    assert locked.user is None and locked.lockout.scope == "account"
    assert locked.message == "Too many failed sign-ins for this account. Try again in 15 minutes."
    assert 14 * 60 < locked.lockout.retry_after <= 15 * 60
    with engine.begin() as conn:  # the lock ends when the failures leave the window
        conn.execute(sa.update(login_attempt).values(created_at=sa.func.now() - sa.text("interval '16 minutes'")))
        assert sign_in(conn, "ann@example.com", PASSWORD, "10.0.0.1").user is not None


def test_a_success_clears_the_account_failures(acme):
    engine, *_ = acme
    with engine.begin() as conn:
        for _ in range(4):
            sign_in(conn, "ann@example.com", "wrong password", "10.0.0.1")
        assert sign_in(conn, "ann@example.com", PASSWORD, "10.0.0.1").user is not None
        for _ in range(4):
            assert sign_in(conn, "ann@example.com", "wrong password", "10.0.0.1").lockout is None
    assert count(engine, login_attempt) == 4


def test_an_address_trying_many_accounts_is_locked_for_all(acme):
    engine, *_ = acme
    policy = ThrottlePolicy(account_limit=5, address_limit=6)
    with engine.begin() as conn:
        for n in range(6):
            assert sign_in(conn, f"guess{n}@example.com", "x", "10.9.9.9", policy).lockout is None
        locked = sign_in(conn, "ann@example.com", PASSWORD, "10.9.9.9", policy)
        assert locked.lockout.scope == "address" and "network address" in locked.message
        assert sign_in(conn, "ann@example.com", PASSWORD, "10.0.0.1", policy).user is not None


def test_the_throttle_window_is_pruned(acme):
    engine, *_ = acme
    with engine.begin() as conn:
        throttle.record_failure(conn, "ann@example.com", "10.0.0.1")
        conn.execute(sa.update(login_attempt).values(created_at=sa.func.now() - sa.text("interval '1 hour'")))
        throttle.record_failure(conn, "ann@example.com", "10.0.0.1")
    assert count(engine, login_attempt) == 1


# ---- hub user ------------------------------------------------------------------------------
def hub(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input)


def test_user_commands(clean_db):
    with clean_db.begin() as conn:
        store.create_company(conn, "Acme")
        store.create_company(conn, "Bella")
    added = hub("user", "add", "--company", "Acme", "--email", "Admin@Acme.example", "--role", "admin", "--password-stdin",
                input="first password 1\n")
    assert added.exit_code == 0 and "user admin@acme.example (new) is now admin of 'Acme'" in added.output
    prompted = hub("user", "add", "--company", "Bella", "--email", "viewer@bella.example", "--role", "viewer",
                   input="prompted password\nprompted password\n")
    assert prompted.exit_code == 0, prompted.output
    assert "prompted password" not in prompted.output  # hidden prompt
    again = hub("user", "add", "--company", "Bella", "--email", "admin@acme.example", "--role", "viewer")
    assert again.exit_code == 0 and "(existing) is now viewer of 'Bella'" in again.output  # no password asked
    listed = hub("user", "list")
    assert "admin@acme.example" in listed.output and "Acme (admin), Bella (viewer)" in listed.output
    assert "viewer@bella.example" in listed.output
    only_acme = hub("user", "list", "--company", "Acme")
    assert "viewer@bella.example" not in only_acme.output
    with clean_db.begin() as conn:
        assert sign_in(conn, "admin@acme.example", "first password 1", "127.0.0.1").user
        assert sign_in(conn, "viewer@bella.example", "prompted password", "127.0.0.1").user

    reset = hub("user", "reset-password", "ADMIN@acme.example", "--password-stdin", input="second password 2\n")
    assert reset.exit_code == 0 and "sessions have ended" in reset.output
    assert hub("user", "disable", "viewer@bella.example").output == "user viewer@bella.example disabled\n"
    with clean_db.begin() as conn:
        assert sign_in(conn, "admin@acme.example", "second password 2", "127.0.0.1").user
        assert sign_in(conn, "viewer@bella.example", "prompted password", "127.0.0.1").user is None
    assert hub("user", "enable", "viewer@bella.example").exit_code == 0


@pytest.mark.parametrize("args, stdin, message", [
    (("user", "add", "--company", "Nope", "--email", "a@b.example", "--role", "admin", "--password-stdin"), "long enough pw\n", "Nope"),
    (("user", "add", "--company", "Acme", "--email", "a@b.example", "--role", "owner", "--password-stdin"), "long enough pw\n", "unknown role 'owner'"),
    (("user", "add", "--company", "Acme", "--email", "not-an-email", "--role", "admin", "--password-stdin"), "long enough pw\n", "is not an email"),
    (("user", "add", "--company", "Acme", "--email", "a@b.example", "--role", "admin", "--password-stdin"), "short\n", "at least 10 characters"),
    (("user", "add", "--company", "Acme", "--email", "a@b.example", "--role", "admin", "--password-stdin"), "\n", "no password given"),
    (("user", "disable", "ghost@b.example"), None, "no user 'ghost@b.example'"),
    (("user", "reset-password", "ghost@b.example", "--password-stdin"), "long enough pw\n", "no user"),
])
def test_user_command_errors_are_one_line(clean_db, args, stdin, message):
    with clean_db.begin() as conn:
        store.create_company(conn, "Acme")
    result = hub(*args, input=stdin)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: ") and message in result.output and result.output.count("\n") == 1, result.output
    assert count(clean_db, app_user) == 0


def test_demo_seed_makes_a_login_per_company_and_role(clean_db, secret_keys):
    from hub.demo import DEMO_PASSWORD

    first = hub("demo", "seed")
    assert first.exit_code == 0, first.output
    assert f"login admin@acme.example (admin of Acme Builders), password {DEMO_PASSWORD}" in first.output
    again = hub("demo", "seed")
    assert again.exit_code == 0 and "login viewer@bella.example (viewer of Bella Pizza)\n" in again.output
    with clean_db.begin() as conn:
        owner = sign_in(conn, "owner@demo.example", DEMO_PASSWORD, "127.0.0.1").user
        assert [(m.company_name, m.role) for m in users.memberships(conn, owner.id)] == [
            ("Acme Builders", "admin"), ("Bella Pizza", "admin")]
    assert count(clean_db, app_user) == 5
