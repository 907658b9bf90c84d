"""The demo's OAuth apps: `hub demo oauth-env` gives the web app an app per provider the
settings pages connect, pointed at its emulator, and `hub demo connect` registers the web
app's callback there, so Connect leads to the emulator's consent page."""

import httpx
import pytest

from emulators.registry import run_all
from hub.connect import oauth_flow
from hub.demo import DEMO_APP, DemoPorts, oauth_app_env, register_oauth_apps
from hub.providers import registry

CONNECTED_BY_OAUTH = ("procore", "quickbooks", "slack", "xero")


@pytest.fixture(scope="module")
def emulators():
    with run_all(list(CONNECTED_BY_OAUTH), base_port=0) as running:
        yield {name: url for name, (_, url) in running.items()}


def _ports(urls: dict[str, str]) -> DemoPorts:
    class Ports(DemoPorts):  # the emulators on the free ports run_all found
        @property
        def emulator_urls(self) -> dict[str, str]:
            return urls

    return Ports(web=8999)


def test_every_provider_connected_from_the_pages_gets_a_demo_app(emulators):
    env = oauth_app_env(_ports(emulators))
    connectable = sorted(name for name, spec in registry.providers().items() if oauth_flow.connectable(spec))
    assert connectable == sorted(CONNECTED_BY_OAUTH)
    for name in connectable:
        app = oauth_flow.app_for(registry.get(name), env)
        assert (app.client_id, app.client_secret, app.origin) == (*DEMO_APP, emulators[name])
    assert oauth_flow.app_for(registry.get("slack"), env).extra == {"signing_secret": "demo-slack-signing-secret"}


def test_the_callback_is_registered_so_authorize_shows_the_consent_page(emulators):
    lines = list(register_oauth_apps(_ports(emulators)))
    assert len(lines) == 4 and all("consent page" in line for line in lines)
    callback = "http://127.0.0.1:8999" + oauth_flow.CALLBACK_PATH
    page = httpx.get(emulators["quickbooks"] + "/connect/oauth2", params={
        "response_type": "code", "client_id": DEMO_APP[0], "redirect_uri": callback, "state": "s"})
    assert page.status_code == 200 and "Approve" in page.text
    elsewhere = httpx.get(emulators["quickbooks"] + "/connect/oauth2", params={
        "response_type": "code", "client_id": DEMO_APP[0], "redirect_uri": "http://127.0.0.1:1/cb", "state": "s"})
    assert elsewhere.status_code == 400
