"""A steady load of signed Uber Eats order webhooks at the load balancer, as Uber sends them:
each order is one webhook (its own event id and order id), signed with the integration's
client secret, and sent again until it is acknowledged (a provider retries anything but a
2xx; here after 0.2 s, while the drill lasts). The counts are taken on the sender's side:
what was sent, what was acknowledged (200), every answer's status; the drill then counts
what the database stored for the same ids."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable

import httpx
import sqlalchemy as sa

from hub.providers.ubereats.inbound import sign_ubereats
from hub.schema import external_order, inbound_event

STORE_ID = "drill-store"


@dataclass
class Order:
    event_id: str
    order_id: str
    first_sent: float = 0.0
    acked_at: float | None = None
    attempts: int = 0


@dataclass
class Tally:
    sent: int
    acknowledged: int
    stored: int
    duplicates: int
    lost: int
    attempts: int
    statuses: dict[int | str, int] = field(default_factory=dict)

    def line(self, drill: str) -> str:
        statuses = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items(), key=lambda kv: str(kv[0])))
        return (f"[{drill}] sent {self.sent} acknowledged {self.acknowledged} stored {self.stored} "
                f"duplicates {self.duplicates} lost {self.lost} (attempts {self.attempts}; answers {statuses})")


class WebhookLoad:
    """`order_source`, when given, makes each order where it can be read back (the Uber Eats
    emulator's `POST /_emulator/orders`) and returns its id, so the hub's order runs can take
    the orders the load announces; otherwise the ids are made up and only the web app's side
    is exercised."""

    def __init__(self, base_url: str, endpoint_id: int, secret: str, rate: float = 40.0, senders: int = 8,
                 order_source: Callable[[], str] | None = None, store_id: str = STORE_ID):
        self.url = f"{base_url}/webhooks/ubereats/{endpoint_id}"
        self.secret, self.rate, self.senders = secret, rate, senders
        self.order_source, self.store_id = order_source, store_id
        self.orders: list[Order] = []
        self.statuses: Counter = Counter()
        self.answers: list[tuple[float, int | str]] = []  # (time, status) of every attempt
        self._lock = threading.Lock()
        self._producing = threading.Event()
        self._retrying = threading.Event()
        self._threads: list[threading.Thread] = []
        self._next = 0
        self._run = uuid.uuid4().hex[:8]

    def start(self) -> "WebhookLoad":
        self._producing.set()
        self._retrying.set()
        self._started = time.monotonic()
        self._threads = [threading.Thread(target=self._sender, name=f"load-{n}", daemon=True) for n in range(self.senders)]
        for t in self._threads:
            t.start()
        return self

    def _take(self) -> Order | None:
        """The next new order, paced to `rate` per second over all senders."""
        with self._lock:
            n = self._next
            self._next += 1
        due = self._started + n / self.rate
        while (wait := due - time.monotonic()) > 0:
            if not self._producing.is_set():
                return None
            time.sleep(min(wait, 0.1))
        if not self._producing.is_set():
            return None
        order_id = self.order_source() if self.order_source else f"order-{self._run}-{n}"
        order = Order(event_id=f"evt-{self._run}-{n}", order_id=order_id, first_sent=time.time())
        with self._lock:
            self.orders.append(order)
        return order

    def _body(self, order: Order) -> bytes:
        return json.dumps({
            "event_id": order.event_id, "event_time": int(order.first_sent), "event_type": "orders.notification",
            "meta": {"user_id": self.store_id, "resource_id": order.order_id, "status": "pos"},
            "resource_href": f"https://api.uber.com/v2/eats/order/{order.order_id}",
        }).encode()

    def _sender(self) -> None:
        with httpx.Client(timeout=10) as client:
            while (order := self._take()) is not None:
                body = self._body(order)
                headers = {"X-Uber-Signature": sign_ubereats(self.secret, body), "Content-Type": "application/json"}
                while self._retrying.is_set():
                    order.attempts += 1
                    try:
                        response = client.post(self.url, content=body, headers=headers)
                        status: int | str = response.status_code
                        if status >= 500 and b"<html>" in response.content:
                            status = f"{status}(haproxy)"  # the hub's own 503 has an empty body
                    except httpx.HTTPError as exc:
                        status = type(exc).__name__
                    with self._lock:
                        self.statuses[status] += 1
                        self.answers.append((time.time(), status))
                    if status == 200:
                        order.acked_at = time.time()
                        break
                    time.sleep(0.2)

    def stop(self, drain: float = 30.0) -> None:
        """Stop making new orders; keep retrying the unacknowledged ones up to `drain` s."""
        self._producing.clear()
        deadline = time.monotonic() + drain
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._retrying.clear()
        for t in self._threads:
            t.join(15)

    def acked_after(self, moment: float) -> int:
        return sum(1 for o in self.orders if o.acked_at and o.acked_at > moment)

    def tally(self, engine) -> Tally:
        """What the database holds for the ids sent: rows per order id and per event id."""
        order_ids = [o.order_id for o in self.orders]
        event_ids = [o.event_id for o in self.orders]
        with engine.connect() as conn:
            orders = Counter(conn.scalars(sa.select(external_order.c.external_id).where(external_order.c.external_id.in_(order_ids))))
            events = Counter(conn.scalars(sa.select(inbound_event.c.event_id).where(inbound_event.c.event_id.in_(event_ids))))
        acked = [o for o in self.orders if o.acked_at]
        stored = [o for o in self.orders if orders[o.order_id] and events[o.event_id]]
        duplicates = sum(n - 1 for n in orders.values() if n > 1) + sum(n - 1 for n in events.values() if n > 1)
        lost = sum(1 for o in acked if not (orders[o.order_id] and events[o.event_id]))
        return Tally(sent=len(self.orders), acknowledged=len(acked), stored=len(stored), duplicates=duplicates, lost=lost,
                     attempts=sum(o.attempts for o in self.orders), statuses=dict(self.statuses))
