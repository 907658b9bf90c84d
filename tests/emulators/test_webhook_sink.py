"""The customer sink verifies with the `standardwebhooks` library, as a customer would: the
hub's signatures pass, with the current or a previous secret during a rotation; anything
unsigned, signed with another secret or stale is refused and still kept with its verdict."""

import time

import httpx

from emulators.serve import serve
from emulators.webhook_sink import create_emulator
from hub.inbound.verify import generate_standard_secret, sign_standard


def _post(client, name, secret, body=b'{"type": "order.status_changed"}', timestamp=None, msg_id="msg_1"):
    timestamp = int(time.time()) if timestamp is None else timestamp
    headers = {"webhook-id": msg_id, "webhook-timestamp": str(timestamp), "content-type": "application/json"}
    if secret:
        headers["webhook-signature"] = sign_standard(secret, msg_id, timestamp, body)
    return client.post(f"/hooks/{name}", content=body, headers=headers).status_code


def test_sink_verdicts():
    current, previous, other = (generate_standard_secret() for _ in range(3))
    with serve(create_emulator().app) as url, httpx.Client(base_url=url) as client:
        client.post("/_emulator/secrets/acme", json={"secret": current, "previous": [previous]})

        assert _post(client, "acme", current) == 204
        assert _post(client, "acme", previous, msg_id="msg_2") == 204
        assert _post(client, "acme", current, body=b"not json", msg_id="msg_3") == 204  # the body is checked, not parsed
        assert _post(client, "acme", other, msg_id="msg_4") == 401
        assert _post(client, "acme", None, msg_id="msg_5") == 401
        assert _post(client, "acme", current, timestamp=int(time.time()) - 600, msg_id="msg_6") == 401  # past the 5-minute tolerance
        assert _post(client, "bella", current, msg_id="msg_7") == 401  # no secret stored for bella

        received = client.get("/_emulator/received", params={"name": "acme"}).json()
        assert [(r["webhook_id"], r["verified"]) for r in received["received"]] == [
            ("msg_1", True), ("msg_2", True), ("msg_3", True), ("msg_4", False), ("msg_5", False), ("msg_6", False)]
        assert (received["verified"], received["total"]) == (3, 6)
        assert received["received"][0]["type"] == "order.status_changed" and received["received"][2]["type"] is None
