"""The Uber Eats emulator as a marketplace host for the order drills (store bella-001, client
demo-ue): `POST /_emulator/orders {"count": n}` places orders and sends their signed webhooks
to the URL set with `POST /_emulator/webhook` (with none set it sends nothing: a drill's own
load then sends them); `GET /_emulator/orders` shows each order's state.

`GET /_drill/answers`: every accept and deny call the hub made, per order id, with the status
answered (204 taken, 409 already answered), so a drill can tell an order accepted once from
one the hub asked twice.

`python -m tests.drills.ubereats_host HOST PORT`"""

from __future__ import annotations

import re
import sys
import threading

import uvicorn
from starlette.responses import JSONResponse

from emulators.ubereats import create_emulator

ANSWER_PATH = re.compile(r"^/v1/eats/orders/([^/]+)/(accept|deny)_pos_order$")


def app(emulator):
    answers: dict[str, list[list]] = {}
    lock = threading.Lock()

    async def asgi(scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/_drill/answers":
            with lock:
                body = {order: list(calls) for order, calls in answers.items()}
            return await JSONResponse(body)(scope, receive, send)
        match = ANSWER_PATH.match(scope["path"]) if scope["type"] == "http" else None
        if match is None:
            return await emulator.app(scope, receive, send)

        async def noting_send(message):
            if message["type"] == "http.response.start":
                with lock:
                    answers.setdefault(match[1], []).append([match[2], message["status"]])
            await send(message)

        await emulator.app(scope, receive, noting_send)

    return asgi


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    emulator = create_emulator(retry_base_s=0.5, base_url=f"http://{host}:{port}")
    uvicorn.run(app(emulator), host=host, port=port, log_level="warning", access_log=False)
