"""Accounts of the settings pages and their memberships of companies.

An email is stored lower-case and compared that way (RFC 5321 lets the local part be
case-sensitive; no mail provider people use treats it so, and two accounts differing only
by case would be a trap). A user's role is per company: `admin` changes things, `viewer`
reads. Nothing here sends mail or knows about sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.auth import passwords
from hub.errors import NotFoundError, ValidationError
from hub.schema import ROLES, app_user, company, membership

MAX_EMAIL = 320  # RFC 3696 errata: 64 + 1 + 255


@dataclass(frozen=True)
class User:
    id: int
    email: str
    is_active: bool
    password_hash: str  # never shown; the web session binds itself to it (a reset ends old sessions)

    def __repr__(self) -> str:
        return f"User(id={self.id}, email={self.email!r}, is_active={self.is_active})"


@dataclass(frozen=True)
class Membership:
    company_id: int
    company_name: str
    role: str
    timezone: str = "UTC"


def normalize_email(email: str) -> str:
    value = email.strip().lower()
    local, at, domain = value.partition("@")
    if not at or not local or "." not in domain or "@" in domain or any(c.isspace() for c in value) or len(value) > MAX_EMAIL:
        raise ValidationError(f"'{email.strip()[:80]}' is not an email address")
    return value


def check_role(role: str) -> str:
    if role not in ROLES:
        raise ValidationError(f"unknown role '{role}'; roles: {', '.join(ROLES)}")
    return role


def _user(row) -> User:
    return User(row.id, row.email, row.is_active, row.password_hash)


def find_user(conn: Connection, email: str) -> User | None:
    row = conn.execute(sa.select(app_user).where(app_user.c.email == normalize_email(email))).first()
    return _user(row) if row else None


def get_user(conn: Connection, user_id: int) -> User | None:
    row = conn.execute(sa.select(app_user).where(app_user.c.id == user_id)).first()
    return _user(row) if row else None


def require_user(conn: Connection, email: str) -> User:
    user = find_user(conn, email)
    if user is None:
        raise NotFoundError(f"no user '{normalize_email(email)}'")
    return user


def create_user(conn: Connection, email: str, password: str) -> int:
    """A new active user; the password is checked for length and stored as an argon2id hash."""
    address = normalize_email(email)
    try:
        passwords.check_strength(password)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    if find_user(conn, address) is not None:
        raise ValidationError(f"user '{address}' already exists")
    return conn.scalar(sa.insert(app_user).values(email=address, password_hash=passwords.hash_password(password)).returning(app_user.c.id))


def grant(conn: Connection, user_id: int, company_id: int, role: str) -> str:
    """Make the user a member of the company with `role` (or change their role there);
    returns what happened: 'added', 'changed' or 'unchanged'."""
    check_role(role)
    current = conn.scalar(sa.select(membership.c.role).where(membership.c.user_id == user_id, membership.c.company_id == company_id))
    if current == role:
        return "unchanged"
    if current is None:
        conn.execute(sa.insert(membership).values(user_id=user_id, company_id=company_id, role=role))
        return "added"
    conn.execute(sa.update(membership).where(membership.c.user_id == user_id, membership.c.company_id == company_id).values(role=role))
    return "changed"


def memberships(conn: Connection, user_id: int) -> list[Membership]:
    """The user's companies, by name."""
    rows = conn.execute(
        sa.select(company.c.id, company.c.name, company.c.timezone, membership.c.role)
        .join(membership, membership.c.company_id == company.c.id)
        .where(membership.c.user_id == user_id)
        .order_by(company.c.name)
    )
    return [Membership(r.id, r.name, r.role, r.timezone) for r in rows]


@dataclass(frozen=True)
class UserSummary:
    id: int
    email: str
    is_active: bool
    last_login_at: datetime | None
    roles: tuple[tuple[str, str], ...]  # (company name, role)


def list_users(conn: Connection, company_id: int | None = None) -> list[UserSummary]:
    """Every user (or the members of one company) with their roles, by email."""
    query = sa.select(app_user.c.id, app_user.c.email, app_user.c.is_active, app_user.c.last_login_at).order_by(app_user.c.email)
    if company_id is not None:
        query = query.where(app_user.c.id.in_(sa.select(membership.c.user_id).where(membership.c.company_id == company_id)))
    users = list(conn.execute(query))
    roles: dict[int, list[tuple[str, str]]] = {}
    for r in conn.execute(
        sa.select(membership.c.user_id, company.c.name, membership.c.role)
        .join(company, company.c.id == membership.c.company_id)
        .where(membership.c.user_id.in_([u.id for u in users]))
        .order_by(company.c.name)
    ):
        roles.setdefault(r.user_id, []).append((r.name, r.role))
    return [UserSummary(u.id, u.email, u.is_active, u.last_login_at, tuple(roles.get(u.id, ()))) for u in users]


def set_active(conn: Connection, email: str, active: bool) -> User:
    """Disable (or re-enable) a user; a disabled user's sessions end at their next request."""
    user = require_user(conn, email)
    conn.execute(sa.update(app_user).where(app_user.c.id == user.id).values(is_active=active))
    return user


def reset_password(conn: Connection, email: str, password: str) -> User:
    """A new password; the user's sessions end, since they are bound to the old hash."""
    user = require_user(conn, email)
    try:
        passwords.check_strength(password)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    conn.execute(sa.update(app_user).where(app_user.c.id == user.id).values(password_hash=passwords.hash_password(password)))
    return user


def authenticate(conn: Connection, email: str, password: str) -> User | None:
    """The active user with this email and password, or None. An unknown email still costs
    one argon2 verification (against a dummy hash) so the answer's timing does not tell
    which emails have accounts; a hash made with older parameters is redone."""
    try:
        user = find_user(conn, email)
    except ValidationError:
        user = None
    matches, needs_rehash = passwords.verify(user.password_hash if user else passwords.dummy_hash(), password)
    if user is None or not matches or not user.is_active:
        return None
    values: dict = {"last_login_at": sa.func.now()}
    if needs_rehash:
        values["password_hash"] = passwords.hash_password(password)
    conn.execute(sa.update(app_user).where(app_user.c.id == user.id).values(**values))
    return user
