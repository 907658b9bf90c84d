"""Twilio phone number setup: the account's numbers, read live (IncomingPhoneNumbers through
the integration's client), and the one SMS goes out from, saved as the integration's
`from_number`. A number is saved only after Twilio listed it as the account's and able to
send SMS (a from number that is not the account's fails every send with 21606), the check
`hub notify check` makes too (hub/providers/twilio/setup.py).

Shown for the providers whose spec lists "numbers" in `pages`."""

from __future__ import annotations

from starlette.routing import Route

from hub import integrations as store
from hub.errors import HubError
from hub.web.sections import Section
from hub.web.sections.common import back, text
from hub.web.sections.live import ask, keyring, problem

KEY = "numbers"
FIELD = "from_number"  # the config field the client sends from (the spec's ClientFactory options)


def load(conn, context, row, spec, query) -> dict:
    current = store.get_integration(conn, keyring(), row.id).config.get(FIELD)
    live = ask(conn.engine, row.id, lambda client: client.numbers())
    numbers = sorted(live.value or [], key=lambda n: str(n.get("phone_number")))
    return {"numbers": numbers, "error": live.error, "current": current,
            "current_listed": any(n.get("phone_number") == current for n in numbers)}


def routes(pages) -> list:
    def choose(request, context, row, form):
        wanted = text(form, "phone_number", 20)
        live = ask(pages.engine, row.id, lambda client: client.numbers())
        match = next((n for n in live.value or [] if n.get("phone_number") == wanted), None)
        if not live.ok:
            pages.flash(request, f"Number not saved: {live.error}", "bad")
        elif match is None:
            pages.flash(request, "Number not saved: it is not one of the account's numbers.", "bad")
        elif not match.get("sms"):
            pages.flash(request, f"Number not saved: {wanted} cannot send SMS.", "bad")
        else:
            try:
                with pages.engine.begin() as conn:
                    store.update_config(conn, keyring(), row.id, {FIELD: wanted})
            except HubError as exc:
                pages.flash(request, f"Number not saved: {problem(exc)}", "bad")
            else:
                pages.flash(request, f"Text messages now go out from {wanted}.")
        return back(row.id, KEY)

    return [Route("/settings/integrations/{integration_id:int}/" + KEY + "/choose", pages.integration_action(choose),
                  methods=["POST"])]


SECTION = Section(key=KEY, label="Phone number", template="sections/numbers.html", load=load, routes=routes)
