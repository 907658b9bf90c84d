"""The Uber Eats emulator as a marketplace host for the order drill (store bella-001, client
demo-ue): `POST /_emulator/orders {"count": n}` places orders and sends their signed webhooks
to the URL set with `POST /_emulator/webhook`; `GET /_emulator/orders` shows each order's state.

`python -m tests.drills.ubereats_host HOST PORT`"""

from __future__ import annotations

import sys

import uvicorn

from emulators.ubereats import create_emulator

if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    emulator = create_emulator(retry_base_s=0.5, base_url=f"http://{host}:{port}")
    uvicorn.run(emulator.app, host=host, port=port, log_level="warning", access_log=False)
