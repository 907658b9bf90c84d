"""Turning received marketplace orders into POS orders, and applying status events.

Claiming is commit-safe: each order is taken with `SELECT ... FOR UPDATE SKIP LOCKED` on
`external_order WHERE NOT processed`, oldest first, and handled in that same transaction
(POS order insert, the provider's accept/deny call, status and history), so
- an order committed late with a lower id is still found (no `max(id)` cursor);
- two runs at once never take the same order (the second skips the locked row);
- a crash before the commit leaves the order unprocessed for the next run, and a crash
  after the provider call but before the commit makes the next run accept again, which the
  provider answers as already accepted: handled, not doubled.

Status events (`inbound_event` with `processed_at` NULL) are applied the same way through
the monotonic state machine, so late and repeated events keep the right final state.

The same claim carries the kitchen's changes back to the marketplace: an accepted order the
POS marked ready or cancelled (kitchen.py) is flagged unprocessed, and the next run calls
the provider (DoorDash ready for pickup / cancellation, Uber Eats cancel); a provider that is
down leaves it flagged for the run after, one that says it is too late is recorded.

The job talks to each marketplace through a DeliveryClient (hub/providers/protocols.py):
the provider's differences (Uber Eats' order is read by id, DoorDash's comes in the
webhook; only Uber Eats can say how an order stands) live in the clients.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.inbound.events import parse
from hub.orders import pos_mapping
from hub.orders.history import announce, with_history
from hub.orders.state_machine import advance
from hub.providers.connect import open_client
from hub.providers import registry
from hub.providers.errors import ConfigurationProblem, NeedsReauthentication, RecordProblem, TransientProblem
from hub.providers.protocols import DeliveryClient
from hub.providers.transport import RetrySettings
from hub.redact import describe_error
from hub.sync import write_ledger
from hub.schema import external_order, inbound_event, integration, pos_order

log = logging.getLogger("hub.orders")
_ANSWERS = {"accept": {"answer": "accept"}, "deny": {"answer": "deny"}}  # what a ledger row records
# Provider calls happen while the order row is locked, and an order must be answered within
# minutes anyway: retry briefly here and let the next run (seconds later) try again.
ORDER_RETRY = RetrySettings(max_attempts=3, base_delay_s=0.2, max_delay_s=2.0, max_retry_after_s=10.0, timeout_s=10.0)
MAX_ATTEMPTS = 3  # runs in which an order may fail unexpectedly before it is set aside for a person
EARLY_EVENT_PATIENCE_S = 600  # a status event may wait this long for its order's webhook


@dataclass
class ProcessReport:
    accepted: int = 0
    rejected: int = 0
    skipped: int = 0  # already cancelled or closed by the provider
    failed: int = 0  # left unprocessed for the next run (transient, auth, configuration)
    events_applied: int = 0
    events_ignored: int = 0
    pushed: int = 0  # kitchen changes told to the marketplace (ready, cancelled)
    push_refused: int = 0  # the marketplace no longer took them (already cancelled, picked up)
    errors: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)  # webhook row created -> accepted

    def as_metadata(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("errors", "latencies_s")}
        if self.latencies_s:
            ordered = sorted(self.latencies_s)
            data["accept_latency_max_s"] = round(ordered[-1], 3)
            data["accept_latency_p50_s"] = round(ordered[len(ordered) // 2], 3)
        return data


ClientFactory = Callable[[int], DeliveryClient]  # integration id -> its client


class OrderProcessor:
    def __init__(self, engine: Engine, keyring: Keyring, client_factory: ClientFactory | None = None):
        self.engine, self.keyring = engine, keyring
        self._factory = client_factory or (lambda integration_id: open_client(engine, keyring, integration_id, retry=ORDER_RETRY))
        self._clients: dict[int, DeliveryClient] = {}
        self._blocked: set[int] = set()  # integrations that failed this run (outage, auth, configuration)
        self._skip: dict[str, set[int]] = {"external_order": set(), "inbound_event": set()}  # rows set aside this run

    def client(self, integration_id: int) -> DeliveryClient:
        if integration_id not in self._clients:
            self._clients[integration_id] = self._factory(integration_id)
        return self._clients[integration_id]

    def close(self) -> None:
        for client in self._clients.values():
            client.transport.close()

    def run(self, max_orders: int = 500, max_events: int = 1000) -> ProcessReport:
        report = ProcessReport()
        for _ in range(max_orders):
            if not self._next_order(report):
                break
        for _ in range(max_events):
            if not self._next_event(report):
                break
        return report

    # ---- orders --------------------------------------------------------------------------
    def _claim(self, conn: Connection, table: sa.Table, where: list) -> sa.Row | None:
        query = (
            sa.select(table, integration.c.provider, integration.c.company_id)
            .join(integration, integration.c.id == table.c.integration_id)
            .where(*where, integration.c.provider.in_(registry.with_capability("delivery")))
            .order_by(table.c.id)
            .limit(1)
            .with_for_update(of=table, skip_locked=True)
        )
        if self._blocked:
            query = query.where(table.c.integration_id.not_in(self._blocked))
        if self._skip[table.name]:
            query = query.where(table.c.id.not_in(self._skip[table.name]))
        return conn.execute(query).mappings().first()

    def _next_order(self, report: ProcessReport) -> bool:
        claimed: dict[str, Any] = {}
        try:
            with self.engine.begin() as conn:
                row = self._claim(conn, external_order, [sa.not_(external_order.c.processed)])
                if row is None:
                    return False
                claimed.update(row)
                self._handle_order(conn, row, report)
        except (TransientProblem, NeedsReauthentication, ConfigurationProblem) as exc:
            # the transaction rolled back: the order stays unprocessed and the next run retries
            report.failed += 1
            report.errors.append(f"order {claimed['external_id']}: {describe_error(exc)}")
            # retries already ran inside the client: this provider is down or refusing us, so
            # its other orders wait for the next run too (a run never spins on one outage)
            self._blocked.add(claimed["integration_id"])
            log.warning("order %s left for the next run: %s", claimed["external_id"], describe_error(exc))
        except Exception as exc:  # noqa: BLE001 - one bad order must not stop the others
            report.failed += 1
            report.errors.append(f"order {claimed['external_id']}: {describe_error(exc)}")
            self._skip["external_order"].add(claimed["id"])
            self._record_error(claimed, exc)
            log.exception("order %s failed; set aside", claimed["external_id"])
        return True

    def _record_error(self, claimed: dict[str, Any], exc: Exception) -> None:
        """Note the failure in the order's history; after MAX_ATTEMPTS it stops being retried
        (processed, status unchanged) so it cannot block the queue for good."""
        entry = {"status": claimed["status"], "applied": False, "why": "processing error", "error": describe_error(exc),
                 "source": "hub", "at": datetime.now(timezone.utc).isoformat()}
        with self.engine.begin() as conn:
            history = conn.execute(
                sa.update(external_order)
                .where(external_order.c.id == claimed["id"])
                .values(status_history=with_history(entry))
                .returning(external_order.c.status_history)
            ).scalar_one()
            if sum(1 for h in history if h.get("why") == "processing error") >= MAX_ATTEMPTS:
                conn.execute(sa.update(external_order).where(external_order.c.id == claimed["id"]).values(processed=True))

    def _handle_order(self, conn: Connection, row: Any, report: ProcessReport) -> None:
        provider, now = row["provider"], datetime.now(timezone.utc)
        if row["order_id"] is not None:  # answered earlier; the kitchen changed it since (kitchen.py)
            self._push(conn, row, report, now)
            return
        if row["status"] != "received":  # cancelled by an event before we got to it
            self._finish(conn, row, row["status"], "no longer open", now)
            report.skipped += 1
            return
        item = store.get_integration(conn, self.keyring, row["integration_id"])
        client = self.client(row["integration_id"])
        order = client.order_details(row["external_id"], row["raw_data"])
        delivery = registry.get(provider).delivery
        draft = delivery.to_pos_draft(order)
        refusal = pos_mapping.decide(delivery.refusal_codes, dict(item.config), draft)
        earlier, marker = (None, None) if client.order_state_readable else self._mark_answer(conn, row, refusal)
        savepoint = conn.begin_nested()  # the POS order exists only if the provider took our answer
        retries_before = client.transport.retries
        try:
            if refusal is None:
                pos_id, number = self._insert_pos(conn, row["company_id"], provider, draft, row["external_id"])
                client.accept(row["external_id"], number)
                savepoint.commit()
                self._finish(conn, row, "accepted", "accepted at the provider", now, order_id=pos_id, raw=order)
                report.accepted += 1
                report.latencies_s.append((datetime.now(timezone.utc) - row["created_at"]).total_seconds())
            else:
                client.deny(row["external_id"], draft.order_number, refusal.code, refusal.explanation, refusal.items)
                savepoint.commit()
                self._finish(conn, row, "rejected", f"{refusal.code}: {refusal.explanation}", now, raw=order)
                report.rejected += 1
            if marker is not None:
                write_ledger.succeed(conn, marker, row["external_id"], None)
        except RecordProblem as exc:
            # the provider no longer takes an answer (already answered, expired, cancelled)
            savepoint.rollback()
            why = f"provider refused the answer: {describe_error(exc)}"
            state = client.order_state(row["external_id"])
            lost = earlier or (marker if client.transport.retries > retries_before else None)
            if state is None and lost is not None:
                # DoorDash cannot be asked, but an answer of ours went out whose reply was lost
                # (an earlier run's, per the ledger, or this call's first attempt before the
                # transport retried it): "already processed" is that answer arriving
                state = "accepted" if lost.payload_hash == write_ledger.payload_hash(_ANSWERS["accept"]) else "rejected"
                why += f"; an earlier answer ({state}) had an unknown outcome, so it is taken as given"
            earlier = lost
            pos_id = None
            if state == "accepted" and (refusal is None or earlier is not None):  # our earlier accept went through
                pos_id, _ = self._insert_pos(conn, row["company_id"], provider, draft, row["external_id"])
            self._finish(conn, row, state or row["status"], why, now, order_id=pos_id, raw=order)
            if marker is not None:
                (write_ledger.succeed(conn, marker, row["external_id"], None) if earlier is not None
                 else write_ledger.fail(conn, marker, describe_error(exc)))
            report.skipped += 1
        except BaseException:
            savepoint.rollback()
            raise

    def _mark_answer(self, conn: Connection, row: Any, refusal: pos_mapping.Refusal | None) -> tuple[Any, Any]:
        """(an earlier answer whose outcome was lost, the ledger row of this one), for a provider
        whose order state cannot be read back (DoorDash). The row is committed before the call
        (hub/sync/write_ledger.py), so a confirm whose reply was lost, or whose transaction died
        after it, is known on the next run when DoorDash says "already processed"."""
        earlier = write_ledger.pending(conn, row["integration_id"], "external_order", row["id"])
        if earlier is not None:
            return earlier, write_ledger.resume(self.engine, earlier)
        answer = _ANSWERS["accept" if refusal is None else "deny"]
        return None, write_ledger.begin(self.engine, row["integration_id"], "external_order", row["id"], "update", answer)

    def _push(self, conn: Connection, row: Any, report: ProcessReport, now: datetime) -> None:
        """Tell the marketplace what the kitchen did. A provider that is down raises
        (TransientProblem): the order stays flagged and the next run tries again."""
        pending = next((h for h in reversed(row["status_history"]) if h.get("push") == "pending"), None)
        what = row["status"]
        done: dict[str, Any] = {"processed": True, "synced_at": now}
        if pending is None or what not in registry.get(row["provider"]).delivery.pushed:
            conn.execute(sa.update(external_order).where(external_order.c.id == row["id"]).values(**done))
            return
        client = self.client(row["integration_id"])
        number = conn.scalar(sa.select(pos_order.c.order_number).where(pos_order.c.id == row["order_id"]))
        try:
            client.push_status(row["external_id"], what, number, pending.get("reason") or "OTHER", "cancelled in the POS")
            note = f"told {row['provider']}: {what}"
            report.pushed += 1
        except RecordProblem as exc:  # too late for it (already cancelled, picked up, expired)
            note = f"{row['provider']} refused {what}: {describe_error(exc)}"
            report.push_refused += 1
        entry = {"status": what, "event_status": what, "applied": False, "why": note, "source": "hub", "pushed": what,
                 "at": now.isoformat()}
        conn.execute(sa.update(external_order).where(external_order.c.id == row["id"])
                     .values(**done, status_history=with_history(entry)))

    @staticmethod
    def _insert_pos(conn: Connection, company_id: int, source: str, draft: pos_mapping.PosDraft, external_id: str) -> tuple[int, str]:
        """The POS order: (its id, its number). The number is the marketplace's short one (Uber
        Eats' display id: the last 5 hex digits of the order id, which the courier reads out),
        and it comes round again: a store's first repeat is likely within ~1,200 orders. When
        the company has it already, the order's own id qualifies it (pos_mapping.qualified_number)
        rather than the insert failing, which left the order unanswered until Uber cancelled it
        (found by the PostgreSQL restart drill, tests/drills)."""
        values = {k: v for k, v in draft.__dict__.items()}
        pos_id = conn.scalar(
            pg_insert(pos_order).values(company_id=company_id, source=source, status="open", **values)
            .on_conflict_do_nothing(index_elements=[pos_order.c.company_id, pos_order.c.order_number])
            .returning(pos_order.c.id)
        )
        if pos_id is not None:
            return pos_id, draft.order_number
        values["order_number"] = pos_mapping.qualified_number(draft.order_number, external_id)
        pos_id = conn.scalar(
            sa.insert(pos_order).values(company_id=company_id, source=source, status="open", **values).returning(pos_order.c.id)
        )
        return pos_id, values["order_number"]

    @staticmethod
    def _finish(conn: Connection, row: Any, status: str, why: str, now: datetime, order_id: int | None = None, raw: Any = None) -> None:
        step = advance(row["status"], status)
        seen = _provider_status(row)
        if step.applied:
            announce(conn, row["company_id"], external_order_id=row["id"], pos_order_id=order_id or row["order_id"],
                     provider=row["provider"], external_id=row["external_id"], status=step.after, previous=step.before,
                     source="hub")
        entry = step.history_entry("hub", at=now, event_status=status, note=why)
        values: dict[str, Any] = {
            "status": step.after,
            "processed": True,
            "synced_at": now,
            "status_history": with_history(entry),
        }
        if order_id is not None:
            values["order_id"] = order_id
        if seen is not None:
            values["external_status"] = seen
        if raw is not None and raw is not row["raw_data"]:
            values["raw_data"] = {"webhook": row["raw_data"], "order": raw}
        conn.execute(sa.update(external_order).where(external_order.c.id == row["id"]).values(**values))

    # ---- status events ---------------------------------------------------------------------
    def _next_event(self, report: ProcessReport) -> bool:
        with self.engine.begin() as conn:
            row = self._claim(conn, inbound_event, [inbound_event.c.processed_at.is_(None)])
            if row is None:
                return False
            now = datetime.now(timezone.utc)
            events = parse(row["provider"], row["payload"], b"")
            event = events[0] if events else None
            order = None
            if event is not None and event.order_id and event.order_status:
                order = conn.execute(
                    sa.select(external_order)
                    .where(external_order.c.integration_id == row["integration_id"], external_order.c.external_id == event.order_id)
                    .with_for_update()
                ).mappings().first()
            if order is None and event is not None and event.order_status and (now - row["received_at"]).total_seconds() < EARLY_EVENT_PATIENCE_S:
                # the order's own webhook may still be on its way: keep the event for a later run
                self._skip["inbound_event"].add(row["id"])
                return True
            if order is None:
                report.events_ignored += 1  # nothing to apply (or an order we never received)
            else:
                step = advance(order["status"], event.order_status)
                entry = step.history_entry(event.event_type, at=now, event_status=event.order_status, event_id=event.event_id)
                conn.execute(
                    sa.update(external_order)
                    .where(external_order.c.id == order["id"])
                    .values(
                        status=step.after,
                        # the provider's word as last seen, even when a late event does not move our status
                        external_status=event.provider_status or order["external_status"],
                        synced_at=now,
                        status_history=with_history(entry),
                    )
                )
                if step.applied:
                    announce(conn, row["company_id"], external_order_id=order["id"], pos_order_id=order["order_id"],
                             provider=row["provider"], external_id=order["external_id"], status=step.after,
                             previous=step.before, source=event.event_type)
                    report.events_applied += 1
                else:
                    report.events_ignored += 1
            conn.execute(sa.update(inbound_event).where(inbound_event.c.id == row["id"]).values(processed_at=now))
        return True


def _provider_status(row: Any) -> str | None:
    """The provider's own status string in the webhook that created the order (its
    `raw_data`, before the job adds the fetched order to it); None once that is no longer the
    webhook alone, or when the webhook does not parse: the status last seen then stays."""
    try:
        events = parse(row["provider"], row["raw_data"], b"")
    except ValueError:
        return None
    return events[0].provider_status if events and events[0].order_id == row["external_id"] else None


@dataclass(frozen=True)
class PendingWork:
    orders: int  # unprocessed orders (new, or owed a push to the marketplace)
    events: int  # unapplied delivery status events
    # what the queue holds, in a word: the same signature twice means no run took anything
    # and nothing new came (e.g. an integration whose credentials are broken)
    signature: str


def pending_work(engine: Engine) -> PendingWork:
    """What the sensor looks at."""
    with engine.connect() as conn:
        orders, newest_order = conn.execute(
            sa.select(sa.func.count(), sa.func.max(external_order.c.id)).where(sa.not_(external_order.c.processed))
        ).one()
        events, newest_event = conn.execute(
            sa.select(sa.func.count(), sa.func.max(inbound_event.c.id))
            .where(inbound_event.c.processed_at.is_(None), inbound_event.c.provider.in_(registry.with_capability("delivery")))
        ).one()
    return PendingWork(int(orders), int(events), f"{orders}.{newest_order or 0}.{events}.{newest_event or 0}")
