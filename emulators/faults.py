"""Fault injection for the emulators, set at run time (admin API or directly in tests).

A `FaultPlan` says what goes wrong on the provider's API paths:
- `burst_429`: the next N API requests get the provider's throttle response, with
  `Retry-After` in seconds (`retry_after_format="seconds"`) or as an HTTP date ("http-date");
- `error_rate_5xx`: that fraction of API requests gets a 5xx (deterministic: seeded);
- `fail_next_5xx`: the next N API requests get a 5xx;
- `latency_ms`: added before every API request is handled;
- `reply_delay_ms`: every API request is handled at once and its reply held back this long,
  so a client that times out has had its write applied (a lost reply, not a lost request);
- `drop_next`: the next N API responses are cut mid-body (the connection closes after the
  headers and half of the body, as a dropped connection does).

Token expiry is a fault too, but it lives on the OAuth server (`expire_access_tokens`).
"""

from __future__ import annotations

import asyncio
import random
import threading
from dataclasses import asdict, dataclass, fields
from email.utils import formatdate
from typing import Any, Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from emulators.clock import Clock


@dataclass
class FaultPlan:
    burst_429: int = 0
    retry_after_s: int = 1
    retry_after_format: str = "seconds"  # seconds | http-date
    error_rate_5xx: float = 0.0
    fail_next_5xx: int = 0
    status_5xx: int = 503
    latency_ms: int = 0
    reply_delay_ms: int = 0
    drop_next: int = 0
    seed: int = 0


class ConnectionDropped(Exception):
    """Raised inside the ASGI app after half a body: the server closes the connection."""


class FaultInjector:
    def __init__(self, clock: Clock):
        self.clock = clock
        self.plan = FaultPlan()
        self._random = random.Random(0)
        self._lock = threading.Lock()
        self.injected: dict[str, int] = {"429": 0, "5xx": 0, "drop": 0}

    def configure(self, **changes: Any) -> FaultPlan:
        """Replace the plan's named fields; unknown names are an error (a typo must not pass)."""
        known = {f.name for f in fields(FaultPlan)}
        unknown = set(changes) - known
        if unknown:
            raise ValueError(f"unknown fault setting(s): {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        with self._lock:
            for name, value in changes.items():
                setattr(self.plan, name, value)
            if "seed" in changes:
                self._random = random.Random(self.plan.seed)
            return FaultPlan(**asdict(self.plan))

    def reset(self) -> None:
        with self._lock:
            self.plan = FaultPlan()
            self._random = random.Random(0)

    def retry_after_header(self) -> str:
        if self.plan.retry_after_format == "http-date":
            return formatdate(self.clock.time() + self.plan.retry_after_s, usegmt=True)
        return str(self.plan.retry_after_s)

    def decide(self) -> tuple[float, str | None]:
        """(latency in seconds, fault kind or None) for one API request."""
        with self._lock:
            plan = self.plan
            kind = None
            if plan.burst_429 > 0:
                plan.burst_429 -= 1
                kind = "429"
            elif plan.fail_next_5xx > 0:
                plan.fail_next_5xx -= 1
                kind = "5xx"
            elif plan.error_rate_5xx and self._random.random() < plan.error_rate_5xx:
                kind = "5xx"
            elif plan.drop_next > 0:
                plan.drop_next -= 1
                kind = "drop"
            if kind:
                self.injected[kind] += 1
            return plan.latency_ms / 1000.0, kind


ResponseFactory = Callable[[Scope], "ASGIApp"]


class FaultMiddleware:
    """Applies the injector's decisions to requests whose path `applies_to` accepts.

    `throttle_response(retry_after)` and `error_response(status)` build the provider's own
    429 and 5xx responses, so a faulted response looks like the real provider's.
    """

    def __init__(
        self,
        app: ASGIApp,
        injector: FaultInjector,
        applies_to: Callable[[str], bool],
        throttle_response: Callable[[str], ASGIApp],
        error_response: Callable[[int], ASGIApp],
    ):
        self.app, self.injector, self.applies_to = app, injector, applies_to
        self.throttle_response, self.error_response = throttle_response, error_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.applies_to(scope["path"]):
            await self.app(scope, receive, send)
            return
        latency, kind = self.injector.decide()
        if latency:
            await asyncio.sleep(latency)
        if kind == "429":
            await self.throttle_response(self.injector.retry_after_header())(scope, receive, send)
        elif kind == "5xx":
            await self.error_response(self.injector.plan.status_5xx)(scope, receive, send)
        elif kind == "drop":
            await self.app(scope, receive, _cut_after_half_body(send))
        elif self.injector.plan.reply_delay_ms:
            await self.app(scope, receive, _held_back(send, self.injector.plan.reply_delay_ms / 1000.0))
        else:
            await self.app(scope, receive, send)


def _held_back(send: Send, delay: float) -> Send:
    async def delayed_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await asyncio.sleep(delay)
        await send(message)

    return delayed_send


def _cut_after_half_body(send: Send) -> Send:
    async def cutting_send(message: Message) -> None:
        if message["type"] == "http.response.body":
            body = message.get("body", b"")
            await send({"type": "http.response.body", "body": body[: max(1, len(body) // 2)], "more_body": True})
            raise ConnectionDropped("emulated connection drop")
        await send(message)

    return cutting_send
