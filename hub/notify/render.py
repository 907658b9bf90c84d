"""What a notification says: an event rendered into a Slack message (Block Kit), the
dynamic template data of a SendGrid email, or the text of an SMS.

Placeholders are ``{{ path }}`` (dotted into nested objects), the same syntax as SendGrid's
handlebars templates, so one vocabulary serves all three channels. Why not `str.format`:
a template is operator input and `format` reaches attributes (``{0.__class__}``); here a
placeholder can only read a value from the event. A missing value renders as empty text.

What a template can read (the *context*): the event payload's fields at the top level (as
shaped by the route's payload options, so ``{"mode": "thin"}`` keeps personal data out of
a Slack channel too), and ``event.type``, ``event.id``, ``event.timestamp``,
``event.company_id``, ``event.description``, ``event.summary`` (one readable line: for the
Procore events a sentence such as "RFI #12 'Door hardware' assigned to Jane Doe on project
Riverside", else the description and the payload's plain fields).

Without a template of its own, a route sends that line (Slack text and SMS body); in Slack
the Procore events show labelled fields (project, assignee, due date, cost impact, ...)
instead of the payload's raw ones.

Slack: values are escaped (``&``, ``<``, ``>``) before they go into mrkdwn, so an order
note saying ``<!channel>`` cannot page a whole channel; the template's own text is not
escaped (an operator may mean ``<!here>`` or a ``<url|link>``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass
from typing import Any, Mapping

from hub.providers import registry
from hub.errors import ValidationError
from hub.outbound.outbox import EVENT_TYPES

__all__ = ["context", "fill", "slack_message", "email_data", "sms_text", "sms_segments", "check_template", "preview", "Preview",
           "TEMPLATE_FIELDS"]

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
SMS_MAX = 1600  # Twilio refuses longer bodies (21617)
SLACK_TEXT_MAX = 3000  # a section block's text limit
SLACK_HEADER_MAX = 150
SLACK_FIELDS_MAX = 10  # a section block holds at most 10 fields
SLACK_FIELD_MAX = 2000
MAX_BLOCKS = 50
# the text fields of each route kind's template a person edits (a Slack `blocks` layout is JSON: `hub notify add-route`)
TEMPLATE_FIELDS: Mapping[str, tuple[str, ...]] = {"slack": ("title", "text"), "email": ("template_id",), "sms": ("body",)}
# GSM 03.38's basic set: a body of only these goes in 160-character segments, anything else in 70 (UCS-2)
_GSM7 = frozenset("@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
                  "¿abcdefghijklmnopqrstuvwxyzäöñüà^{}\\[~]|€")


def context(event_type: str, event_id: int, company_id: int, created_at: dt.datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The values a template may name (see the module docstring)."""
    when = created_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    meta = {"type": event_type, "id": f"evt_{event_id}", "timestamp": when, "company_id": company_id,
            "description": EVENT_TYPES.get(event_type, event_type)}
    ctx = {**data, "event": meta}
    meta["summary"] = default_text(ctx)
    return ctx


def _lookup(ctx: Mapping[str, Any], path: str) -> Any:
    value: Any = ctx
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(", ", ": "), ensure_ascii=False, default=str)
    return str(value)


def slack_escape(text: str) -> str:
    """Slack's three control characters in mrkdwn/plain text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fill(template: str, ctx: Mapping[str, Any], *, escape=None) -> str:
    """`template` with every ``{{ path }}`` replaced by its value (escaped with `escape`)."""

    def one(match: re.Match) -> str:
        text = _text(_lookup(ctx, match.group(1)))
        return escape(text) if escape else text

    return PLACEHOLDER.sub(one, template)


def _fill_deep(value: Any, ctx: Mapping[str, Any], escape) -> Any:
    if isinstance(value, str):
        return fill(value, ctx, escape=escape)
    if isinstance(value, list):
        return [_fill_deep(v, ctx, escape) for v in value]
    if isinstance(value, dict):
        return {k: _fill_deep(v, ctx, escape) for k, v in value.items()}
    return value


def _title(event_type: str) -> str:
    return event_type.replace(".", " ").replace("_", " ").capitalize()


def _scalars(ctx: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """The payload's plain fields by name (a payload read back from JSONB has lost its order)."""
    return sorted((k, v) for k, v in ctx.items() if k != "event" and not isinstance(v, (dict, list)) and v is not None)


# ---- readable lines for the Procore events (hub/sync/procore_events.py) ------------------------
_IMPACT = {"yes_known": "yes", "yes_unknown": "yes, amount not known yet", "no_impact": "none", "tbd": "to be determined",
           "n_a": "n/a", None: "not set"}


def _name(value: Any, fallback: str) -> str:
    if isinstance(value, Mapping):
        return str(value.get("name") or value.get("login") or value.get("id") or fallback)
    return str(value) if value not in (None, "") else fallback


def _record(ctx: Mapping[str, Any]) -> str:
    """RFI #12 'Door hardware' / Submittal #08 71 00-3 'Door Hardware shop drawings'."""
    kind = "RFI" if ctx.get("entity") == "rfi" else str(ctx.get("entity") or "record").capitalize()
    number = f" #{ctx['number']}" if ctx.get("number") not in (None, "") else ""
    name = ctx.get("subject") or ctx.get("title")
    return f"{kind}{number}" + (f" '{name}'" if name else "")


def _amount(value: Any, unit: str) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    return f"${value:,.2f}" if unit == "$" else f"{value:g} day{'' if value == 1 else 's'}"


def _impact_text(impact: Any, unit: str) -> str:
    impact = impact if isinstance(impact, Mapping) else {}
    status = impact.get("status")
    amount = _amount(impact.get("value"), unit) if status == "yes_known" else ""
    return amount or _IMPACT.get(status, str(status))


def _before_after(change: Any, show) -> tuple[str, str]:
    change = change if isinstance(change, Mapping) else {}
    return show(change.get("before")), show(change.get("after"))


def _procore_lines(event_type: str, ctx: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]] | None:
    """(sentence, labelled fields) for a Procore event, or None for other types."""
    if event_type not in ("task.assigned", "schedule.changed", "budget.alert") or "entity" not in ctx:
        return None
    what, project_name = _record(ctx), _name(ctx.get("project"), "")
    where = f" on project {project_name}" if project_name else ""
    fields: list[tuple[str, str]] = [("Project", project_name or "-")]
    if event_type == "task.assigned":
        who, was = _name(ctx.get("assignee"), "someone"), _name(ctx.get("previous_assignee"), "")
        role = "ball in court" if ctx.get("role") == "ball_in_court" else "assignee"
        sentence = f"{what} assigned to {who}{where}" + (f" (was {was})" if was else "")
        fields += [("Assigned to", who), ("Previously", was or "nobody"), ("As", role)]
    elif event_type == "schedule.changed":
        changes = ctx.get("changes") if isinstance(ctx.get("changes"), Mapping) else {}
        parts = []
        if "due_date" in changes:
            before, after = _before_after(changes["due_date"], lambda d: str(d) if d else "none")
            parts.append(f"due date moved from {before} to {after}" if after != "none" else f"due date {before} removed")
            fields.append(("Due date", f"{before} → {after}"))
        if "schedule_impact" in changes:
            before, after = _before_after(changes["schedule_impact"], lambda i: _impact_text(i, "days"))
            parts.append(f"schedule impact {after} (was {before})")
            fields.append(("Schedule impact", f"{before} → {after}"))
        sentence = f"{what}{where}: " + ("; ".join(parts) or "schedule changed")
    else:
        before, after = _before_after(ctx.get("cost_impact"), lambda i: _impact_text(i, "$"))
        total = _amount(ctx.get("project_known_cost_impact"), "$") or "$0.00"
        sentence = f"{what}{where}: cost impact {after} (was {before}); project's known cost impact now {total}"
        fields += [("Cost impact", f"{before} → {after}"), ("Project known cost impact", total)]
    return sentence, fields


# ---- readable lines for the status events (hub/sync/invoices.py, hub/orders/history.py) --------
def _provider_name(provider: Any) -> str:
    spec = registry.providers().get(str(provider))
    return spec.display_name if spec else str(provider or "")


def _status_lines(event_type: str, ctx: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]] | None:
    """(sentence, labelled fields) for `invoice.status_changed` / `order.status_changed` as the
    hub emits them (a status and the previous one); None for other shapes."""
    if event_type not in ("invoice.status_changed", "order.status_changed") or not ctx.get("status") or "previous_status" not in ctx:
        return None
    now, was = str(ctx["status"]).replace("_", " "), str(ctx.get("previous_status") or "none").replace("_", " ")
    source = _provider_name(ctx.get("provider"))
    if event_type == "invoice.status_changed":
        what = f"Invoice {ctx.get('number') or ctx.get('remote_id') or ctx.get('invoice_id')}" + (f" in {source}" if source else "")
        fields = [("Invoice", str(ctx.get("number") or "-")), ("Ledger", source or "hub")]
    elif ctx.get("of") == "pos_order":
        what = f"POS order {ctx.get('pos_order_id')}" + (f" ({source} order {ctx['external_id']})" if ctx.get("external_id") else "")
        fields = [("POS order", str(ctx.get("pos_order_id"))), ("Marketplace", source or "-")]
    else:
        what = f"{source or 'Marketplace'} order {ctx.get('external_id') or ctx.get('external_order_id')}"
        fields = [("Order", str(ctx.get("external_id") or ctx.get("external_order_id"))), ("Marketplace", source or "-")]
    return f"{what} is now {now} (was {was})", [*fields, ("Status", f"{was} → {now}")]


def _lines(event_type: str, ctx: Mapping[str, Any]) -> tuple[str, list[tuple[str, str]]] | None:
    return _procore_lines(event_type, ctx) or _status_lines(event_type, ctx)


def default_text(ctx: Mapping[str, Any]) -> str:
    """One line: what happened (a sentence for the Procore and status events), else the event's
    description and its plain fields."""
    event = ctx["event"]
    lines = _lines(event["type"], ctx)
    if lines is not None:
        return lines[0]
    fields = ", ".join(f"{k}: {_text(v)}" for k, v in _scalars(ctx)[:8])
    return f"{event['description'][:1].upper()}{event['description'][1:]}" + (f" ({fields})" if fields else "")


def slack_message(template: Mapping[str, Any], ctx: Mapping[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """(text, blocks) for chat.postMessage.

    ``text`` is the notification and fallback text (what a phone's lock screen shows);
    ``blocks`` the Block Kit layout: the route's own ``blocks`` template if it has one,
    else a header (``title`` or the event type), the text, up to ten of the event's plain
    fields, and a context line naming the event (so a person can find it in the hub).
    """
    event = ctx["event"]
    text_template = template.get("text")
    text = fill(text_template, ctx, escape=slack_escape) if text_template else slack_escape(default_text(ctx))
    if template.get("blocks"):
        return text, _fill_deep(template["blocks"], ctx, slack_escape)
    title = fill(template["title"], ctx) if template.get("title") else _title(event["type"])
    lines = _lines(event["type"], ctx)
    pairs = lines[1] if lines is not None else _scalars(ctx)
    fields = [{"type": "mrkdwn", "text": f"*{slack_escape(k)}*\n{slack_escape(_text(v))}"[:SLACK_FIELD_MAX]}
              for k, v in pairs[:SLACK_FIELDS_MAX]]
    # without a text template the default text lists the fields already: show them once, as fields
    # (a sentence says more than its fields: it stays, a Procore one with a link to the record)
    if lines is not None and not text_template:
        url = str(ctx.get("url") or "")
        body = text + (f" <{url}|Open in Procore>" if url.startswith("https://") and not set(url) & set("<>|") else "")
    else:
        body = text if text_template else slack_escape(event["description"])
    section: dict[str, Any] = {"type": "section", "text": {"type": "mrkdwn", "text": body[:SLACK_TEXT_MAX]}}
    if fields:
        section["fields"] = fields
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:SLACK_HEADER_MAX] or "Notification", "emoji": True}},
        section,
    ]
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"`{event['type']}` · {event['id']} · {event['timestamp']}"}]})
    return text, blocks


def email_data(ctx: Mapping[str, Any]) -> dict[str, Any]:
    """SendGrid ``dynamic_template_data``: the context as is (``{{status}}``, ``{{event.id}}``)."""
    return json.loads(json.dumps(ctx, default=str))


def sms_text(template: Mapping[str, Any], ctx: Mapping[str, Any]) -> str:
    """The SMS body, cut to Twilio's 1600 characters."""
    body = fill(template["body"], ctx) if template.get("body") else default_text(ctx)
    return body if len(body) <= SMS_MAX else body[: SMS_MAX - 1] + "…"


def sms_segments(body: str) -> int:
    """How many SMS parts Twilio bills for `body` (GSM-7: 160, or 153 each when split;
    UCS-2: 70, or 67 each)."""
    single, part = (160, 153) if set(body) <= _GSM7 else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // part)


@dataclass(frozen=True)
class Preview:
    """A message as its route would send it: Slack's text and blocks, an SMS body (with its
    segment count), or a SendGrid template's dynamic data."""

    text: str | None = None
    blocks: list[dict[str, Any]] | None = None
    data: dict[str, Any] | None = None
    segments: int | None = None


def preview(kind: str, template: Mapping[str, Any], ctx: Mapping[str, Any]) -> Preview:
    """The message a route of `kind` with `template` sends for the event `ctx`, through the
    functions the sender calls (hub/notify/sender.py)."""
    if kind == "slack":
        text, blocks = slack_message(template, ctx)
        return Preview(text=text, blocks=blocks)
    if kind == "sms":
        body = sms_text(template, ctx)
        return Preview(text=body, segments=sms_segments(body))
    return Preview(data=email_data(ctx))


def check_template(kind: str, template: Mapping[str, Any]) -> dict[str, Any]:
    """Validate a route's template when it is saved, where the operator sees the error."""
    allowed = {"slack": {"text", "title", "blocks"}, "email": {"template_id"}, "sms": {"body"}}[kind]
    unknown = set(template) - allowed
    if unknown:
        raise ValidationError(f"unknown {kind} template key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(allowed))}")
    for key in ("text", "title", "body", "template_id"):
        if key in template and (not isinstance(template[key], str) or not template[key].strip()):
            raise ValidationError(f"template {key} must be non-blank text")
    if kind == "email" and not template.get("template_id"):
        raise ValidationError("an email route needs a SendGrid dynamic template id (d-...)")
    if kind == "email" and not template["template_id"].startswith("d-"):
        raise ValidationError("the SendGrid template must be a dynamic template (its id starts with d-)")
    if kind == "sms" and len(template.get("body", "")) > SMS_MAX:
        raise ValidationError(f"an SMS template is longer than {SMS_MAX} characters")
    blocks = template.get("blocks")
    if blocks is not None:
        if not isinstance(blocks, list) or not blocks or len(blocks) > MAX_BLOCKS or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) and b["type"] for b in blocks
        ):
            raise ValidationError(f"Slack blocks must be a list of 1..{MAX_BLOCKS} objects that each have a type")
    return dict(template)
