"""Who is asking, for which company: the signed-in person's context, loaded from the
database on every request (so a disabled user, a reset password or a removed membership
takes effect at once), shared by the pages and their sections."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Engine

from hub.auth import users
from hub.auth.users import Membership, User
from hub.billing.entitlements import Standing, standing
from hub.web import session as web_session


@dataclass(frozen=True)
class Context:
    user: User
    memberships: list[Membership]
    company: Membership
    csrf: str
    billing: Standing | None = None  # the company's subscription; None when the hub bills no one

    @property
    def read_only(self) -> bool:
        """Unpaid past the grace: pages refuse changes (billing actions excepted)."""
        return bool(self.billing and self.billing.read_only)

    @property
    def dunning(self) -> bool:
        return bool(self.billing and self.billing.past_due_since)

    @property
    def is_admin(self) -> bool:
        return self.company.role == "admin"

    @property
    def company_id(self) -> int:
        return self.company.company_id


def load_context(engine: Engine, secret: str, session: dict) -> Context | None:
    """The context of the session's user, or None (and the session cleared) when the user is
    gone, disabled, has a new password since signing in, or belongs to no company."""
    uid = session.get("uid")
    if not uid:
        return None
    with engine.connect() as conn:
        user = users.get_user(conn, uid)
        ok = (user is not None and user.is_active
              and session.get("auth") == web_session.fingerprint(secret, user.password_hash))
        found = users.memberships(conn, uid) if ok else []
        current = next((m for m in found if m.company_id == session.get("company")), found[0]) if found else None
        billing = standing(conn, current.company_id) if current else None
    if not found:
        session.clear()
        return None
    session["company"] = current.company_id
    return Context(user, found, current, web_session.csrf_token(session), billing)
