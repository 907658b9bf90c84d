"""Sync preferences tab: which streams run and in which direction, the local hour of the
nightly sync, and the conflict policy (hub/sync/preferences.py).

They are stored through `preferences.update`, the same function `hub sync set` uses, in the
integration's encrypted config, where the assets, exports and the nightly schedules read
them at their next run: nothing here talks to Dagster. The whole form is saved in one
transaction: a value that does not validate (here, or in `preferences.update`) saves
nothing."""

from __future__ import annotations

from functools import partial

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.crypto import Keyring
from hub.errors import HubError
from hub.sync import preferences
from hub.sync.merge import POLICIES
from hub.web.accounting_forms import PreferencesForm, check
from hub.web.sections import Section
from hub.web.sections.common import HOME, done

KEY = "preferences"
POLICY_TEXT = {
    "field_ownership": "Field ownership: the ledger owns legal name, tax id and active; the hub owns email, phone and "
                       "address; a name changed on both sides waits for you",
    "remote_wins": "The ledger wins every field changed on both sides",
    "local_wins": "The hub wins every field changed on both sides",
    "manual": "Every field changed on both sides waits for you (Conflicts tab)",
}
DIRECTION_TEXT = {"import": "Import (ledger → hub)", "export": "Export (hub → ledger)", "both": "Both ways"}


def _keyring() -> Keyring:
    """The preferences live in the encrypted config: the web app holds HUB_SECRET_KEYS, as
    the webhook receiver does."""
    return Keyring.from_env()


def load(conn, context, row, spec, query) -> dict:
    current = preferences.read(conn, _keyring(), row.id)
    directions = preferences.stream_directions(row.provider)
    streams = [{"name": name, "enabled": current.streams[name].enabled, "direction": current.streams[name].direction,
                "choices": [(d, DIRECTION_TEXT[d]) for d in directions[name]]} for name in directions]
    return {"streams": streams, "hour": current.hour, "policy": current.conflict_policy,
            "policies": [(p, POLICY_TEXT.get(p, p)) for p in POLICIES], "timezone": context.company.timezone}


def save_action(pages, request: Request, context, row, data: FormData) -> Response:
    names = preferences.stream_directions(row.provider)
    raw = {
        "hour": data.get("hour"), "conflict_policy": data.get("conflict_policy"),
        "streams": {name: {"enabled": data.get(f"{name}.enabled") == "on", "direction": data.get(f"{name}.direction")}
                    for name in names},
    }
    form, problem = check(PreferencesForm, raw)
    if form is None:
        return done(pages, request, row.id, KEY, f"Nothing saved. {problem}", "bad")
    keyring = _keyring()
    try:
        with pages.engine.begin() as conn:  # one transaction: all of it or nothing
            preferences.update(conn, keyring, row.id, hour=form.hour, conflict_policy=form.conflict_policy)
            for name, choice in form.streams.items():
                preferences.update(conn, keyring, row.id, stream=name, enabled=choice.enabled, direction=choice.direction)
    except HubError as exc:
        return done(pages, request, row.id, KEY, f"Nothing saved: {exc}.", "bad")
    return done(pages, request, row.id, KEY, "Sync preferences saved; they apply from the next run.")


def routes(pages) -> list[Route]:
    return [Route(HOME + "/{integration_id:int}/" + KEY + "/save", pages.integration_action(partial(save_action, pages)),
                  methods=["POST"])]


SECTION = Section(key=KEY, label="Sync preferences", template="sections/preferences.html", load=load, routes=routes)
