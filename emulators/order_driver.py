"""A stream of marketplace orders at a chosen rate, for the demo, the tests and the benchmark.

`OrderDriver(targets, rate, duration_s=..., count=..., seed=...)` places orders from a
background thread: order i is due at start + i / rate (a late order is placed at once, so the
average rate holds), targets take turns (round robin), and the items of every order come from
the target's menu through a `random.Random(seed)`, so the same seed gives the same orders.
It stops after `count` orders, when `duration_s` has elapsed (orders due before the end are
placed: 20/s for 0.5 s is 10 orders), or on `stop()`; with neither limit it runs until stopped.

A target is an emulator object (anything with `place_order(items)` and `menu`, i.e. the Uber
Eats and DoorDash emulators) or the base URL of a running emulator, which is driven through
its admin API (`GET /_emulator/menu`, `POST /_emulator/orders`).

    driver = OrderDriver([ubereats, doordash], rate=5, duration_s=120, seed=1).start()
    driver.join()
    driver.placed, driver.placed_by, driver.orders  # counts and (target, order id, time) rows
"""

from __future__ import annotations

import logging
import random
import threading
import time
from typing import Any, Sequence

import httpx

log = logging.getLogger(__name__)


class _Target:
    def __init__(self, target: Any, timeout_s: float):
        self.target = target
        self.remote = isinstance(target, str)
        if self.remote:
            self.client = httpx.Client(base_url=target.rstrip("/"), timeout=timeout_s)
            response = self.client.get("/_emulator/menu")
            response.raise_for_status()
            self.menu = response.json()["menu"]
            self.name = self.client.get("/_emulator/health").json().get("provider", target)
        else:
            self.menu = list(target.menu)
            self.name = getattr(getattr(target, "core", None), "provider", type(target).__name__)

    def place(self, items: list[dict[str, Any]]) -> str:
        if not self.remote:
            return self.target.place_order(items)["id"]
        response = self.client.post("/_emulator/orders", json={"items": items})
        response.raise_for_status()
        return response.json()["orders"][0]["id"]

    def close(self) -> None:
        if self.remote:
            self.client.close()


class OrderDriver:
    def __init__(self, targets: Any | Sequence[Any], rate: float, *, duration_s: float | None = None, count: int | None = None,
                 seed: int = 0, max_items: int = 3, modifier_chance: float = 0.3, timeout_s: float = 10.0):
        if rate <= 0:
            raise ValueError("rate must be positive (orders per second)")
        if isinstance(targets, (str, bytes)) or not isinstance(targets, Sequence):
            targets = [targets]
        if not targets:
            raise ValueError("no targets")
        self.rate, self.duration_s, self.count = float(rate), duration_s, count
        self.max_items, self.modifier_chance, self.timeout_s = max_items, modifier_chance, timeout_s
        self.random = random.Random(seed)
        self._raw_targets = list(targets)
        self._targets: list[_Target] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.placed = 0
        self.placed_by: dict[str, int] = {}
        self.orders: list[tuple[str, str, float]] = []  # (target name, order id, time.time() when placed)
        self.errors: list[str] = []
        self.started_at: float | None = None
        self.finished_at: float | None = None

    # ---- control ---------------------------------------------------------------------------------
    def start(self) -> "OrderDriver":
        if self._thread is not None:
            raise RuntimeError("already started")
        self._targets = [_Target(t, self.timeout_s) for t in self._raw_targets]
        self._thread = threading.Thread(target=self._run, daemon=True, name="order-driver")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        """True when the driver has finished."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def run(self) -> int:
        """Start, wait for the end, return the number placed."""
        self.start().join()
        return self.placed

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ---- orders ------------------------------------------------------------------------------------
    def choose_items(self, menu: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Menu references for one order (deterministic given the seed and call order)."""
        r = self.random
        items = []
        for item in r.sample(list(menu), r.randint(1, min(self.max_items, len(menu)))):
            mods = [r.choice(g["options"])["id"] for g in item.get("modifier_groups", [])
                    if g.get("options") and r.random() < self.modifier_chance]
            items.append({"id": item["id"], "quantity": r.choice((1, 1, 1, 2)), "modifiers": mods})
        return items

    def _run(self) -> None:
        self.started_at = t0 = time.monotonic()
        i = 0
        try:
            while not self._stop.is_set():
                if self.count is not None and i >= self.count:
                    break
                offset = i / self.rate
                if self.duration_s is not None and offset >= self.duration_s:
                    break
                wait = t0 + offset - time.monotonic()
                if wait > 0 and self._stop.wait(wait):
                    break
                target = self._targets[i % len(self._targets)]
                items = self.choose_items(target.menu)
                i += 1
                try:
                    order_id = target.place(items)
                except Exception as exc:  # keep the stream going; the benchmark reports errors
                    log.warning("order driver: placing on %s failed: %s", target.name, exc)
                    with self._lock:
                        self.errors.append(f"{target.name}: {type(exc).__name__}: {exc}")
                    continue
                with self._lock:
                    self.placed += 1
                    self.placed_by[target.name] = self.placed_by.get(target.name, 0) + 1
                    self.orders.append((target.name, order_id, time.time()))
        finally:
            self.finished_at = time.monotonic()
            for target in self._targets:
                target.close()
