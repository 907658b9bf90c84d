"""The dispatcher: a long-running asyncio worker that fans out outbox events and delivers
them (``hub webhooks dispatch``).

Why a long-running worker and not a Dagster sensor or job: the lag target (scheduled to
sent, p99 under 1 s) is far below what Dagster's machinery gives (a sensor ticks every 5 s
at best, a launched run costs seconds; see bench/README.md, order_latency). The worker
LISTENs for the outbox's NOTIFY and delivers within milliseconds; a Dagster sensor can
still watch the delivery log. Several workers can run side by side (claims use
``SKIP LOCKED`` and leases, see queue.py); each one is a single process.

Inside one worker, four asyncio tasks and one task per delivery:

* **listener**: ``LISTEN hub_outbox`` / ``hub_webhook_due``, wakes the two loops below;
  they also poll (`poll_interval`), so a lost notification costs latency, not events;
* **fan-out loop**: outbox events -> attempt-1 rows (queue.fan_out);
* **claim loop**: leases due attempts, at most the endpoint's room at a time, and starts a
  delivery task for each;
* **recorder**: writes outcomes in batches (one transaction per batch: close, schedule the
  retry, update the endpoint's failure streak, disable if due);
* **deliveries**: each waits for its endpoint's semaphore (``concurrency`` of its
  policy), sends through the sender for the URL's kind, and hands the outcome to the
  recorder. Endpoints share nothing but the event loop, so a slow or failing endpoint
  only ever occupies its own slots; the global `max_in_flight` only bounds memory.

Stopping (`stop()` or Ctrl-C in the CLI): no new claims; deliveries already sending get
up to `shutdown_grace` seconds; leased rows not yet sent are released (due now); the
recorder writes what it has. A second Ctrl-C, or a kill, leaves the leases to expire:
those attempts are made again by any worker, with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import psycopg

from hub.crypto import Keyring
from hub.errors import HubError
from hub.outbound import queue
from hub.outbound.endpoints import SECRET_PURPOSE
from hub.outbound.outbox import NOTIFY_CHANNEL
from hub.outbound.payload import PayloadOptions
from hub.outbound.policy import DEFAULTS, DeliveryPolicy
from hub.outbound.senders import Message, Outcome, Sender, Target, kind_for_url
from hub.outbound.signing import SigningSecrets
from hub.outbound.ssrf import AddressPolicy
from hub.outbound.webhook_sender import WebhookSender
from hub.redact import describe_error

__all__ = ["DispatchStats", "Dispatcher"]

log = logging.getLogger("hub.outbound")
# a connection to reopen: lost, or ended by the server because this worker went silent inside
# a transaction (`_connect`; when the network comes back the server's last word may arrive)
_CONNECTION_LOST = (psycopg.OperationalError, psycopg.errors.IdleInTransactionSessionTimeout)
UTC = dt.timezone.utc


def _utc(ts: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(ts, UTC)


@dataclass
class DispatchStats:
    """Counters since the worker started, and first-attempt lags of recent deliveries."""

    events: int = 0
    created: int = 0
    sent_ok: int = 0
    failed: int = 0
    retries: int = 0
    exhausted: int = 0
    disabled: int = 0
    lost_leases: int = 0
    released: int = 0
    lags: deque = field(default_factory=lambda: deque(maxlen=20000))

    def snapshot(self) -> dict[str, Any]:
        lags = sorted(self.lags)

        def pct(p: float) -> float | None:
            return round(lags[min(len(lags) - 1, int(p * len(lags)))], 4) if lags else None

        return {
            "events": self.events, "created": self.created, "sent_ok": self.sent_ok, "failed": self.failed,
            "retries": self.retries, "exhausted": self.exhausted, "disabled": self.disabled,
            "lost_leases": self.lost_leases, "released": self.released, "lag_p50_s": pct(0.5), "lag_p99_s": pct(0.99),
        }


@dataclass
class _Slot:
    """One endpoint inside this worker: its concurrency limit and what it holds."""

    concurrency: int
    semaphore: asyncio.Semaphore
    held: int = 0  # claimed rows queued or in flight

    @property
    def room(self) -> int:
        return 2 * self.concurrency - self.held


@dataclass
class _Done:
    claimed: queue.Claimed
    policy: DeliveryPolicy
    outcome: Outcome | None  # None: release the lease unsent


class Dispatcher:
    """Delivers outbox events to outbound endpoints until `stop()`.

    `dsn` is a libpq connection string/URL (no SQLAlchemy driver suffix). `senders` maps a
    sender kind (see senders.py) to its sender; by default HTTP webhooks only, with the
    SSRF allow-list from `address_policy` (default: ``HUB_OUTBOUND_ALLOW``).
    """

    def __init__(
        self,
        dsn: str,
        keyring: Keyring,
        *,
        senders: dict[str, Sender] | None = None,
        address_policy: AddressPolicy | None = None,
        lease_seconds: float = 150.0,
        poll_interval: float = 0.5,
        max_in_flight: int = 2000,
        fanout_batch: int = 500,
        claim_batch: int = 500,
        claim_gap: float = 0.003,
        shutdown_grace: float = 10.0,
        disable_check_interval: float = 60.0,
        rng: random.Random | None = None,
    ) -> None:
        self.dsn = dsn
        self.keyring = keyring
        self._senders_given = senders
        self.address_policy = address_policy
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.max_in_flight = max_in_flight
        self.fanout_batch = fanout_batch
        self.claim_batch = claim_batch
        self.claim_gap = claim_gap
        self.shutdown_grace = shutdown_grace
        self.disable_check_interval = disable_check_interval
        self.rng = rng or random.Random()
        self.stats = DispatchStats()
        self._slots: dict[int, _Slot] = {}
        self._held_total = 0
        self._targets: dict[int, tuple[tuple, Target]] = {}
        self._secrets: dict[str, SigningSecrets] = {}
        self._disabled: dict[int, float] = {}  # endpoint id -> when this worker saw it disabled
        self._last_disable_check: dict[int, float] = {}
        self._deliveries: set[asyncio.Task] = set()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self.ready = threading.Event()

    # ---- control --------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the worker to stop (from any thread)."""
        if self._loop is not None and self._stop_event is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(self._stop_event.set)
            except RuntimeError:  # the loop closed in between: it has stopped already
                pass

    async def run(self, progress: Callable[[dict[str, Any]], None] | None = None, progress_every: float = 5.0) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._fanout_wake = asyncio.Event()
        self._claim_wake = asyncio.Event()
        self._records: asyncio.Queue[_Done] = asyncio.Queue()
        self._senders: dict[str, Sender] = self._senders_given or {"webhook": WebhookSender(self.address_policy)}
        connections = [await self._connect() for _ in range(4)]
        listen_conn, fanout_conn, claim_conn, record_conn = connections
        try:
            await listen_conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            await listen_conn.execute(f"LISTEN {queue.DUE_CHANNEL}")
            loops = [
                asyncio.create_task(self._listen(listen_conn), name="listen"),
                asyncio.create_task(self._fanout_loop(fanout_conn), name="fanout"),
                asyncio.create_task(self._claim_loop(claim_conn), name="claim"),
            ]
            recorder = asyncio.create_task(self._recorder(record_conn), name="recorder")
            if progress is not None:
                loops.append(asyncio.create_task(self._progress(progress, progress_every), name="progress"))
            self.ready.set()
            stop_wait = asyncio.create_task(self._stop_event.wait())
            done, _ = await asyncio.wait([stop_wait, recorder, *loops], return_when=asyncio.FIRST_COMPLETED)
            failure: HubError | None = None
            for task in done:  # a loop that died is a bug: stop, and say so (exit 1 in the CLI)
                if task is not stop_wait and not task.cancelled() and task.exception() is not None:
                    failure = HubError(f"dispatcher stopped: its {task.get_name()} loop failed: {describe_error(task.exception())}")
                    log.error("%s", failure)
            self._stopping = True
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
            stop_wait.cancel()
            if self._deliveries:
                _, pending = await asyncio.wait(set(self._deliveries), timeout=self.shutdown_grace)
                for task in pending:  # their leases expire; another worker re-sends them
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            await self._records.put(None)  # type: ignore[arg-type]
            if not recorder.done():
                await recorder
            if failure is not None:
                raise failure
        finally:
            for sender in self._senders.values():
                await sender.aclose()
            for conn in connections:
                await conn.close()

    def start_in_thread(self) -> threading.Thread:
        """Run in a background thread with its own event loop (tests, embedding)."""

        def main() -> None:
            asyncio.run(self.run())

        thread = threading.Thread(target=main, name="webhook-dispatcher", daemon=True)
        thread.start()
        if not self.ready.wait(15):
            raise RuntimeError("dispatcher did not start")
        return thread

    # ---- loops ----------------------------------------------------------------------

    async def _wait(self, event: asyncio.Event, timeout: float) -> None:
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            pass
        event.clear()

    async def _connect(self) -> psycopg.AsyncConnection:
        """A connection whose open transaction the server ends if this worker goes silent in
        it (`idle_in_transaction_session_timeout`, half the lease, 2..30 s). Why: a worker cut
        off the network between BEGIN and COMMIT (the recorder's close-and-schedule, a claim)
        otherwise keeps its row locks until the server's TCP keepalive gives up, hours by
        default: the other workers' claims skip the locked rows and their recorders wait on the
        endpoint's row, so nothing is delivered (found by drill 5, tests/drills). Nothing here
        waits inside a transaction (no HTTP while one is open), so a live worker never hits it."""
        idle_ms = int(min(30.0, max(2.0, self.lease_seconds / 2)) * 1000)
        return await psycopg.AsyncConnection.connect(self.dsn, autocommit=True,
                                                     options=f"-c idle_in_transaction_session_timeout={idle_ms}")

    async def _fresh(self, conn: psycopg.AsyncConnection, what: str, exc: Exception) -> psycopg.AsyncConnection:
        """After a database error: wait a second, and reconnect if the connection is gone."""
        log.warning("%s: database error, retrying in 1 s: %s", what, describe_error(exc))
        await asyncio.sleep(1)
        if not conn.closed:
            return conn
        try:
            return await self._connect()
        except psycopg.OperationalError as again:
            log.warning("%s: cannot reconnect yet: %s", what, describe_error(again))
            return conn

    async def _listen(self, conn: psycopg.AsyncConnection) -> None:
        while not self._stopping:  # also checked here: a cancel can surface as a database error
            try:
                if conn.closed:
                    conn = await self._connect()
                    await conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    await conn.execute(f"LISTEN {queue.DUE_CHANNEL}")
                    self._fanout_wake.set()  # whatever was notified meanwhile: look now
                async for note in conn.notifies():
                    (self._fanout_wake if note.channel == NOTIFY_CHANNEL else self._claim_wake).set()
            except _CONNECTION_LOST as exc:
                conn = await self._fresh(conn, "listen", exc)

    async def _fanout_loop(self, conn: psycopg.AsyncConnection) -> None:
        while not self._stopping:  # also checked here: a cancel can surface as a database error
            try:
                events, created = await queue.fan_out(conn, self.fanout_batch)
            except _CONNECTION_LOST as exc:
                conn = await self._fresh(conn, "fan-out", exc)
                continue
            self.stats.events += events
            self.stats.created += created
            if created:
                self._claim_wake.set()
            if events < self.fanout_batch:
                await self._wait(self._fanout_wake, max(self.poll_interval, 1.0))

    async def _claim_loop(self, conn: psycopg.AsyncConnection) -> None:
        while not self._stopping:  # also checked here: a cancel can surface as a database error
            room = self.max_in_flight - self._held_total
            claimed: list[queue.Claimed] = []
            if room > 0:
                full = [eid for eid, slot in self._slots.items() if slot.room <= 0]
                rooms = {eid: slot.room for eid, slot in self._slots.items() if slot.held and slot.room > 0}
                try:
                    claimed = await queue.claim(
                        conn, limit=min(room, self.claim_batch), lease_s=self.lease_seconds, full=full, room=rooms,
                        default_concurrency=DEFAULTS.concurrency,
                    )
                except _CONNECTION_LOST as exc:
                    conn = await self._fresh(conn, "claim", exc)
                    continue
                for row in claimed:
                    self._start(row)
            if len(claimed) >= min(room, self.claim_batch) and room > 0:
                await asyncio.sleep(0)  # more may be due: claim again at once
            else:
                await self._wait(self._claim_wake, self.poll_interval)
            if self.claim_gap:
                await asyncio.sleep(self.claim_gap)  # lets wake-ups pile up into one claim

    # ---- one delivery ---------------------------------------------------------------

    def _target(self, row: queue.Claimed) -> tuple[Target, DeliveryPolicy]:
        key = (row.url, row.endpoint_name, (row.secret or {}).get("ct") if isinstance(row.secret, dict) else None,
               repr(row.retry_policy), repr(row.payload_options))
        cached = self._targets.get(row.endpoint_id)
        if cached is not None and cached[0] == key:
            return cached[1], cached[1].policy
        secrets = None
        error: Exception | None = None
        try:
            ct = key[2]
            secrets = self._secrets.get(ct) if ct else None
            if secrets is None and row.secret is not None:
                secrets = SigningSecrets.from_stored(self.keyring.decrypt(row.secret, SECRET_PURPOSE))
                if ct:
                    self._secrets[ct] = secrets
        except Exception as exc:  # a wrong key: every attempt fails with this, visibly
            error = exc
        try:
            policy = DeliveryPolicy.from_json(row.retry_policy)
        except Exception:
            policy = DEFAULTS
        try:
            payload = PayloadOptions.from_json(row.payload_options)
        except Exception:
            payload = PayloadOptions()
        target = Target(row.endpoint_id, row.company_id, row.endpoint_name, row.url, secrets, policy, payload)
        if error is None:
            self._targets[row.endpoint_id] = (key, target)
        return target, policy

    def _start(self, row: queue.Claimed) -> None:
        target, policy = self._target(row)
        slot = self._slots.get(row.endpoint_id)
        if slot is None or slot.concurrency != policy.concurrency:
            slot = _Slot(policy.concurrency, asyncio.Semaphore(policy.concurrency), held=slot.held if slot else 0)
            self._slots[row.endpoint_id] = slot
        slot.held += 1
        self._held_total += 1
        task = asyncio.create_task(self._deliver(row, target, policy, slot))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, row: queue.Claimed, target: Target, policy: DeliveryPolicy, slot: _Slot) -> None:
        outcome: Outcome | None = None
        try:
            async with slot.semaphore:
                lease_left = row.lease.timestamp() - time.time()
                disabled_at = self._disabled.get(row.endpoint_id)
                claimed_before_disable = disabled_at is not None and row.lease.timestamp() - self.lease_seconds <= disabled_at
                if self._stopping or claimed_before_disable or lease_left < policy.timeout + 2:
                    outcome = None  # not sent: give the lease back (a disabled endpoint's rows are closed already)
                else:
                    sender = self._senders.get(kind_for_url(row.url) or "")
                    message = Message(row.message_id, row.attempt, row.outbox_event_id, row.event_type, row.company_id,
                                      row.created_at, row.payload or {})
                    if sender is None:
                        outcome = Outcome(ok=False, started_at=time.time(), error="no sender for this URL scheme", retryable=False)
                    elif target.secrets is None and kind_for_url(row.url) == "webhook":
                        outcome = Outcome(ok=False, started_at=time.time(),
                                          error="cannot read the endpoint's signing secret (is HUB_SECRET_KEYS right?)")
                    else:
                        outcome = await sender.send(target, message)
                    if outcome.ok and row.attempt == 1 and row.created_at is not None:
                        self.stats.lags.append(outcome.started_at - row.created_at.timestamp())
            self._records.put_nowait(_Done(row, policy, outcome))
        finally:
            slot.held -= 1
            self._held_total -= 1
            # claim more when this endpoint's queue runs dry (or the worker was at its cap);
            # claim_gap turns a burst of wake-ups into one claim
            if slot.held < slot.concurrency or self._held_total == self.max_in_flight - 1:
                self._claim_wake.set()

    # ---- recording ------------------------------------------------------------------

    async def _recorder(self, conn: psycopg.AsyncConnection) -> None:
        finished = False
        while not finished:
            first = await self._records.get()
            batch = [first]
            while not self._records.empty() and len(batch) < 1000:
                batch.append(self._records.get_nowait())
            if None in batch:
                finished = True
                batch = [b for b in batch if b is not None]
            while batch:
                try:
                    await self._write(conn, batch)
                    break
                except psycopg.errors.DeadlockDetected:
                    continue
                except _CONNECTION_LOST as exc:
                    conn = await self._fresh(conn, "recorder", exc)

    async def _write(self, conn: psycopg.AsyncConnection, batch: list[_Done]) -> None:
        releases = [(d.claimed.id, d.claimed.lease) for d in batch if d.outcome is None]
        done = [d for d in batch if d.outcome is not None]
        if releases:
            await queue.release(conn, releases)
            self.stats.released += len(releases)
        if not done:
            return
        closings: list[queue.Closing] = []
        retries: list[queue.Retry] = []
        tallies: dict[int, queue.EndpointTally] = {}
        disable_now: dict[int, str] = {}
        policies: dict[int, DeliveryPolicy] = {}
        for d in done:
            row, outcome, policy = d.claimed, d.outcome, d.policy
            assert outcome is not None
            attempted = _utc(outcome.started_at)
            policies[row.endpoint_id] = policy
            closings.append(queue.Closing(row.id, row.lease, "succeeded" if outcome.ok else "failed", outcome.status_code,
                                          outcome.duration_ms, outcome.response_body, outcome.error, attempted))
            tally = tallies.setdefault(row.endpoint_id, queue.EndpointTally())
            if outcome.ok:
                tally.any_success, tally.trailing_failures, tally.last_success = True, 0, attempted
                continue
            tally.trailing_failures += 1
            if outcome.disable_reason:
                disable_now[row.endpoint_id] = f"{outcome.disable_reason} ({attempted.isoformat(timespec='seconds')})"
            delay = policy.next_delay(row.attempt, outcome.retry_after, self.rng) if outcome.retryable else None
            if delay is not None:
                due = _utc(outcome.started_at + outcome.duration_ms / 1000 + delay)
                retries.append(queue.Retry(row.id, row.endpoint_id, row.outbox_event_id, row.attempt + 1, row.message_id, due))
        closed, states = await queue.record(conn, closings, retries, tallies, disable_now)
        for d in done:
            if d.claimed.id not in closed:
                self.stats.lost_leases += 1
                log.warning("delivery %s: lease lost before its result was recorded (another worker has it)", d.claimed.id)
            elif d.outcome.ok:  # type: ignore[union-attr]
                self.stats.sent_ok += 1
            else:
                self.stats.failed += 1
        retried = {r.closing_id for r in retries} & closed
        self.stats.retries += len(retried)
        self.stats.exhausted += sum(1 for d in done if d.claimed.id in closed - retried and not d.outcome.ok)  # type: ignore[union-attr]
        for endpoint_id in disable_now:
            await self._disabled_locally(endpoint_id, disable_now[endpoint_id])
        await self._auto_disable(conn, states, policies)

    async def _auto_disable(self, conn: psycopg.AsyncConnection, states, policies: dict[int, DeliveryPolicy]) -> None:
        """Disable endpoints whose failure streak met their policy (see policy.py)."""
        now = time.time()
        for endpoint_id, failures, last_success, is_active in states:
            policy = policies.get(endpoint_id, DEFAULTS)
            if not is_active or failures < policy.disable_after_failures:
                continue
            if now - self._last_disable_check.get(endpoint_id, 0.0) < self.disable_check_interval:
                continue
            self._last_disable_check[endpoint_id] = now
            why = None
            if policy.disable_after_seconds is None:
                why = f"auto-disabled: {failures} attempts in a row failed"
            else:
                start = await queue.streak_start(conn, endpoint_id, last_success)
                if start is not None and now - start.timestamp() >= policy.disable_after_seconds:
                    why = (f"auto-disabled: every attempt failed since {start.isoformat(timespec='seconds')} "
                           f"({failures} in a row)")
            if why is not None:
                async with conn.transaction():
                    changed = await queue.disable(conn, endpoint_id, why)
                if changed:
                    await self._disabled_locally(endpoint_id, why)

    async def _disabled_locally(self, endpoint_id: int, why: str) -> None:
        self.stats.disabled += 1
        self._disabled[endpoint_id] = time.time()
        self._targets.pop(endpoint_id, None)
        log.warning("endpoint %s disabled: %s", endpoint_id, why)
        for sender in self._senders.values():
            await sender.forget(endpoint_id)

    async def _progress(self, report: Callable[[dict[str, Any]], None], every: float) -> None:
        while not self._stopping:  # also checked here: a cancel can surface as a database error
            await asyncio.sleep(every)
            snap = self.stats.snapshot()
            snap["in_flight"] = self._held_total
            report(snap)
            self.stats.lags.clear()
