"""SendGrid sender verification: the account's sender identities and whether each is
verified, read live (GET /v3/verified_senders through the integration's client); start a
verification (SendGrid mails a link to the address; it is verified once someone there
clicks it), send that email again, and choose a verified sender as the from address
(SendGrid refuses mail from any other with a 403, the check `hub notify check` makes,
hub/providers/sendgrid/setup.py).

Shown for the providers whose spec lists "senders" in `pages`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationError as FormError
from starlette.routing import Route

from hub import integrations as store
from hub.errors import HubError
from hub.web.sections import Section
from hub.web.sections.common import back, number, text
from hub.web.sections.live import ask, keyring, problem

KEY = "senders"
EMAIL = r"^[^@\s,;<>]+@[^@\s,;<>]+\.[^@\s,;<>]+$"
FIELD = "from_email"  # the config field the client sends from


class VerificationForm(BaseModel):
    """What SendGrid needs to start a Single Sender Verification (its required fields)."""

    model_config = ConfigDict(str_strip_whitespace=True)
    nickname: str = Field(min_length=1, max_length=100)
    from_email: str = Field(max_length=254, pattern=EMAIL)
    from_name: str = Field(default="", max_length=100)
    reply_to: str = Field(max_length=254, pattern=EMAIL)
    address: str = Field(min_length=1, max_length=100)
    city: str = Field(min_length=1, max_length=100)
    country: str = Field(min_length=1, max_length=100)


def load(conn, context, row, spec, query) -> dict:
    current = store.get_integration(conn, keyring(), row.id).config.get(FIELD)
    live = ask(conn.engine, row.id, lambda client: client.verified_senders())
    senders = sorted(live.value or [], key=lambda s: str(s.get("from_email")).lower())
    return {"senders": senders, "error": live.error, "current": current,
            "current_verified": any(str(s.get("from_email")).lower() == str(current).lower() and s.get("verified")
                                    for s in senders)}


def _labels(exc: FormError) -> str:
    names = {"nickname": "nickname", "from_email": "from address", "reply_to": "reply-to address", "address": "street address",
             "city": "city", "country": "country", "from_name": "from name"}
    return ", ".join(sorted({names.get(str(e["loc"][0]), str(e["loc"][0])) for e in exc.errors() if e.get("loc")}))


def routes(pages) -> list:
    base = "/settings/integrations/{integration_id:int}/" + KEY

    def start(request, context, row, form):
        values = {name: text(form, name, 200) for name in VerificationForm.model_fields}
        try:
            wanted = VerificationForm(**values)
        except FormError as exc:
            pages.flash(request, f"Verification not started: check the {_labels(exc)}.", "bad")
            return back(row.id, KEY)
        live = ask(pages.engine, row.id, lambda client: client.create_verified_sender(**wanted.model_dump()))
        if live.ok:
            pages.flash(request, f"SendGrid sent a verification email to {wanted.from_email}: the sender is verified once "
                                 "the link in it is clicked.")
        else:
            pages.flash(request, f"Verification not started: {live.error}", "bad")
        return back(row.id, KEY)

    def resend(request, context, row, form):
        sender_id = number(form, "sender_id")
        live = ask(pages.engine, row.id, lambda client: client.resend_verification(sender_id))
        pages.flash(request, "Verification email sent again." if live.ok else f"Not sent again: {live.error}",
                    "ok" if live.ok else "bad")
        return back(row.id, KEY)

    def use(request, context, row, form):
        wanted = text(form, "from_email", 320).lower()
        live = ask(pages.engine, row.id, lambda client: client.verified_senders())
        match = next((s for s in live.value or [] if str(s.get("from_email")).lower() == wanted), None)
        if not live.ok:
            pages.flash(request, f"From address not saved: {live.error}", "bad")
        elif match is None or not match.get("verified"):
            pages.flash(request, "From address not saved: it is not a verified sender of the account.", "bad")
        else:
            try:
                with pages.engine.begin() as conn:
                    store.update_config(conn, keyring(), row.id, {FIELD: match["from_email"]})
            except HubError as exc:
                pages.flash(request, f"From address not saved: {problem(exc)}", "bad")
            else:
                pages.flash(request, f"Email now goes out from {match['from_email']}.")
        return back(row.id, KEY)

    return [
        Route(base + "/verify", pages.integration_action(start), methods=["POST"]),
        Route(base + "/resend", pages.integration_action(resend), methods=["POST"]),
        Route(base + "/use", pages.integration_action(use), methods=["POST"]),
    ]


SECTION = Section(key=KEY, label="Senders", template="sections/senders.html", load=load, routes=routes)
