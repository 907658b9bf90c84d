"""The QuickBooks emulator as a provider host for the sync drill: a company with generated
vendors (many: the sync takes a while), a few invoices and bills, accounts; OAuth client hub-demo / hub-demo-secret.

`GET /_drill/ids/Vendor`: every vendor Id.

`python -m tests.drills.quickbooks_host HOST PORT REALM VENDORS`"""

from __future__ import annotations

import sys

import uvicorn
from starlette.responses import JSONResponse

from emulators.quickbooks import create_emulator


def ids(emulator, entity: str) -> list[str]:
    """Every Id of an entity (retired ones too), read from the emulator's state: what the
    drill compares the hub's copy with."""
    found, position = [], 1
    while True:
        rows = emulator.state.query(f"SELECT * FROM {entity} WHERE Active IN (true, false) STARTPOSITION {position} MAXRESULTS 1000").get(entity, [])
        found += [r["Id"] for r in rows]
        if len(rows) < 1000:
            return found
        position += 1000


def app(emulator):
    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"].startswith("/_drill/ids/"):
            return await JSONResponse(ids(emulator, scope["path"].rsplit("/", 1)[1]))(scope, receive, send)
        await emulator.app(scope, receive, send)

    return asgi


if __name__ == "__main__":
    host, port, realm, vendors = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    emulator = create_emulator(vendors=vendors, invoices=5, accounts=30, realm_id=realm, seed=16)
    uvicorn.run(app(emulator), host=host, port=port, log_level="warning", access_log=False)
