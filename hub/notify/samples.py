"""A sample event of every type the hub emits, shaped as its emitter shapes it, to preview
how a route's messages look before any real event arrives (the settings pages' formatting
preview renders these through render.py, the path a real notification takes).

Why here and not made up by the page: a preview is only worth something if the sample has
the fields a real event carries (the Procore events' project and assignee, the status
events' previous status), so each sample follows its emitter: hub/sync/procore_events.py
(task.assigned, schedule.changed, budget.alert), hub/ai/external_budget.py (ai.budget_80), hub/sync/invoices.py
(invoice.status_changed), hub/orders/history.py (order.status_changed), and `hub notify
test` (webhook.test). tests/test_messaging_preview.py checks every declared event type has
one.
"""

from __future__ import annotations

import datetime as dt
from types import MappingProxyType
from typing import Any, Mapping

from hub.notify import render
from hub.outbound.outbox import EVENT_TYPES

__all__ = ["SAMPLES", "sample_context"]

_PROJECT = {"id": 7, "name": "Riverside Clinic", "remote_id": "562949953425469"}
_RFI = {"entity": "rfi", "id": 41, "remote_id": "1203", "number": "12", "subject": "Door hardware at level 2",
        "url": "https://app.procore.com/562949953425469/project/rfi/show/1203", "project": _PROJECT}

SAMPLES: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "order.status_changed": {"of": "external_order", "external_order_id": 318, "pos_order_id": 1204, "provider": "doordash",
                             "external_id": "F2A9-77C1", "status": "ready", "previous_status": "accepted", "source": "kitchen"},
    "invoice.status_changed": {"invoice_id": 5521, "provider": "quickbooks", "remote_id": "1487", "number": "INV-1042",
                               "status": "paid", "previous_status": "submitted"},
    "budget.alert": {**_RFI, "cost_impact": {"before": {"status": "tbd", "value": None},
                                             "after": {"status": "yes_known", "value": 18250.0}},
                     "project_known_cost_impact": 42870.5},
    "schedule.changed": {**_RFI, "changes": {"due_date": {"before": "2026-03-02", "after": "2026-03-16"},
                                             "schedule_impact": {"before": {"status": "no_impact", "value": None},
                                                                 "after": {"status": "yes_known", "value": 5}}}},
    "task.assigned": {**_RFI, "assignee": {"id": 9, "name": "Jane Doe"}, "previous_assignee": {"id": 4, "name": "Sam Lee"},
                      "role": "assignee"},
    "billing.past_due": {"company_id": 3, "plan": "pro", "status": "past_due", "subscription_id": "sub_1QhubDemo",
                         "grace_days": 14, "message": "The payment for the Pro plan failed. Update the card within 14 days; "
                                                     "after that the hub is read-only for changes (syncs keep running)."},
    "ai.budget_80": {"company_id": 3, "month": "2026-01", "model": "gpt-4o-mini", "budget": 20.0, "spent": 16.42, "share": 0.821,
                     "message": "The external AI model has used 82% of this month's budget (16.42 of 20.00); at the budget its "
                                "calls stop until next month (raise it on the AI assist page)."},
    "webhook.test": {"message": "Test notification from the Integrations Hub", "sent_at": "2026-01-15T14:30:00+00:00"},
})
assert set(SAMPLES) == set(EVENT_TYPES), "every event type needs a sample"

_AT = dt.datetime(2026, 1, 15, 14, 30, tzinfo=dt.timezone.utc)


def sample_context(event_type: str, company_id: int, event_id: int = 1001) -> dict[str, Any]:
    """What a template sees for the sample of `event_type` (render.context of it)."""
    return render.context(event_type, event_id, company_id, _AT, SAMPLES[event_type])
