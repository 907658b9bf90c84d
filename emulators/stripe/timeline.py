"""Time passing: what falls due (renewals, trial ends, finalization, retries, cancellations,
Checkout Sessions' expiry) and test clocks."""

from __future__ import annotations

from typing import Callable

from emulators.stripe.store import DAY, add_interval
from emulators.stripe.wire import StripeError, as_int, check_params, invalid, missing


class Timeline:
    """What happens as time passes, and test clocks (a mixin of Billing)."""

    # ---- time passing ---------------------------------------------------------------------------------
    def _due(self, scope: str | None, until: int) -> tuple[int, int, Callable[[], None]] | None:
        """The earliest thing due in `scope` at or before `until`: (time, priority, action)."""
        best: tuple[int, int, Callable[[], None]] | None = None

        def consider(when: int | None, priority: int, action: Callable[[], None]) -> None:
            nonlocal best
            if when is not None and when <= until and (best is None or (when, priority) < best[:2]):
                best = (when, priority, action)

        for sub in self.all("subscription"):
            if sub["test_clock"] != scope or sub["status"] in ("canceled", "incomplete_expired"):
                continue
            h = self.hidden[sub["id"]]
            start, end = self.period(sub)
            if sub["status"] == "incomplete":
                consider(sub["created"] + 23 * 3600, 0, lambda s=sub: self._expire(s))
                continue
            if sub["status"] == "trialing" and not h["trial_will_end_sent"] and sub["trial_end"] - 3 * DAY > sub["created"]:
                consider(sub["trial_end"] - 3 * DAY, 3, lambda s=sub: self._trial_will_end(s))
            if h["upcoming_for"] != end and not sub["cancel_at"] and sub["status"] != "unpaid":
                when = end - self.upcoming_days * DAY
                if when > start:
                    consider(when, 4, lambda s=sub, e=end: self._upcoming(s, e))
            if sub["cancel_at"] and sub["cancel_at"] <= end:
                consider(sub["cancel_at"], 1, lambda s=sub: self._end_subscription(s, s["cancel_at"], "cancellation_requested"))
            else:
                consider(end, 2, lambda s=sub: self.renew(s, self.period(s)[1]))
        for inv in self.all("invoice"):
            if inv["test_clock"] != scope:
                continue
            if inv["status"] == "draft" and inv["auto_advance"] and inv["automatically_finalizes_at"]:
                consider(inv["automatically_finalizes_at"], 5, lambda i=inv: self.finalize_invoice(i["id"], {}, attempt=True))
            elif inv["status"] == "open" and inv["auto_advance"] and inv["next_payment_attempt"]:
                consider(inv["next_payment_attempt"], 6,
                         lambda i=inv: self.attempt_payment(i, off_session=True, automatic=True))
        for session in self.all("checkout.session"):
            if session["status"] == "open" and self.scope_of(session) == scope:
                consider(session["expires_at"], 7, lambda cs=session: self.expire_checkout_session(cs))
        return best

    def expire_checkout_session(self, session: dict) -> None:
        """An open Checkout Session at its `expires_at` (or expired through the API)."""
        session.update(status="expired", url=None)
        self.emit("checkout.session.expired", session)

    def run_due(self, scope: str | None, until: int) -> int:
        """Perform everything due in `scope` up to `until`, in time order; how many actions ran."""
        done = 0
        request, self.request = self.request, {"id": None, "idempotency_key": None}  # automatic: no request caused it
        try:
            while done < 10000:
                due = self._due(scope, until)
                if due is None:
                    break
                self._time_override[scope] = due[0]
                due[2]()
                done += 1
        finally:
            self._time_override.pop(scope, None)
            self.request = request
        return done

    def _expire(self, sub: dict) -> None:
        self._end_subscription(sub, self.now(sub["test_clock"]), "payment_failed", expired=True)

    def _trial_will_end(self, sub: dict) -> None:
        self.hidden[sub["id"]]["trial_will_end_sent"] = True
        self.emit("customer.subscription.trial_will_end", sub)

    def _upcoming(self, sub: dict, end: int) -> None:
        self.hidden[sub["id"]]["upcoming_for"] = end
        try:
            preview = self.preview_invoice({"subscription": sub["id"]})
        except StripeError:  # nothing to bill next
            return
        event = self._base("evt_", "event", sub["test_clock"], api_version="2026-10-28.endive", context=None,
                           data={"object": preview}, pending_webhooks=0, request={"id": None, "idempotency_key": None},
                           type="invoice.upcoming")
        self.add(event)
        self.on_event(event)

    def renew(self, sub: dict, t: int) -> None:
        """A period ends: the next one starts and is invoiced (a trial's end makes it active)."""
        h = self.hidden[sub["id"]]
        before = self.render(sub)
        interval, count = h["interval"]
        h["k"] += 1
        start, end = add_interval(h["anchor"], interval, count, h["k"]), add_interval(h["anchor"], interval, count, h["k"] + 1)
        for item in self.sub_items(sub):
            item["current_period_start"], item["current_period_end"] = start, end
        if sub["status"] == "trialing":
            sub["status"] = "active"
        if sub["cancel_at_period_end"]:
            sub["cancel_at"] = end
        previous_period_start = before["items"]["data"][0]["current_period_start"]
        reason = "subscription_cycle"
        self.emit_updated("customer.subscription.updated", sub, before)
        invoice = self._subscription_invoice(sub, reason, previous_period_start, t)
        if sub["status"] == "unpaid":
            invoice["auto_advance"] = False
        else:
            invoice["automatically_finalizes_at"] = t + 3600

    # ---- test clocks -------------------------------------------------------------------------------------
    def create_test_clock(self, p: dict) -> dict:
        check_params(p, ("frozen_time", "name"))
        frozen = as_int(p, "frozen_time")
        if frozen is None:
            raise missing("frozen_time")
        clock = self._base("clock_", "test_helpers.test_clock", deletes_after=int(self.clock.time()) + 30 * DAY,
                           frozen_time=frozen, name=p.get("name") or None, status="ready",
                           status_details={})
        self.add(clock)
        self.emit("test_helpers.test_clock.created", clock, scope=None)
        return clock

    def advance_test_clock(self, ident: str, p: dict) -> dict:
        """Moves the clock to `frozen_time`, doing what falls due on the way. Stripe does this
        asynchronously (status `advancing`, then `ready`); here it is done before answering, and
        the answer says `advancing` as Stripe's would; a retrieve then says `ready`."""
        check_params(p, ("frozen_time",))
        clock = self.get("test_helpers.test_clock", ident)
        target = as_int(p, "frozen_time")
        if target is None:
            raise missing("frozen_time")
        if target <= clock["frozen_time"]:
            raise invalid("frozen_time", "The test clock can only be advanced to a time after its current frozen_time.",
                          "parameter_invalid_integer")
        limit = self._advance_limit(ident, clock["frozen_time"])
        if limit is not None and target > limit:
            raise invalid("frozen_time", "Cannot advance the test clock more than two intervals of the shortest subscription "
                          f"interval on it at a time: advance to {limit} or earlier first.", "parameter_invalid_integer")
        clock["status"] = "advancing"
        self.emit("test_helpers.test_clock.advancing", clock, scope=None)
        answer = self.render(clock)
        answer["frozen_time"] = target
        self.run_due(ident, target)
        clock["frozen_time"] = target
        clock["status"] = "ready"
        self.emit("test_helpers.test_clock.ready", clock, scope=None)
        return answer

    def _advance_limit(self, ident: str, frozen: int) -> int | None:
        """Stripe lets a clock move at most two intervals of its shortest live subscription at once."""
        limits = [add_interval(frozen, *self.hidden[s["id"]]["interval"], 2) for s in self.all("subscription")
                  if s["test_clock"] == ident and s["status"] not in ("canceled", "incomplete_expired")]
        return min(limits) if limits else None

    def delete_test_clock(self, ident: str) -> dict:
        clock = self.get("test_helpers.test_clock", ident)
        for customer in self.all("customer"):
            if customer.get("test_clock") == ident:
                self.delete_customer(customer["id"])
        self.hidden[ident]["deleted"] = True
        self.emit("test_helpers.test_clock.deleted", clock, scope=None)
        return {"id": ident, "object": "test_helpers.test_clock", "deleted": True}
