"""Running emulators: in a background thread on a free loopback port (tests, demo), or
all of them in the foreground (`python -m emulators run`)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from typing import Iterator

import uvicorn
from starlette.types import ASGIApp


class _ThreadServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # only the main thread may; the host process owns signals
        pass


@contextmanager
def serve(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, **options) -> Iterator[str]:
    """Serve `app` until the block ends; yield its base URL. Port 0 picks a free one.
    `options` go to uvicorn.Config (e.g. the hub web app's protocol and limits)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound_port = sock.getsockname()[1]
    server = _ThreadServer(uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False, **options))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"emulator:{bound_port}")
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"emulator on {host}:{bound_port} did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
