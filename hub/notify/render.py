"""What a notification says: an event rendered into a Slack message (Block Kit), the
dynamic template data of a SendGrid email, or the text of an SMS.

Placeholders are ``{{ path }}`` (dotted into nested objects), the same syntax as SendGrid's
handlebars templates, so one vocabulary serves all three channels. Why not `str.format`:
a template is operator input and `format` reaches attributes (``{0.__class__}``); here a
placeholder can only read a value from the event. A missing value renders as empty text.

What a template can read (the *context*): the event payload's fields at the top level (as
shaped by the route's payload options, so ``{"mode": "thin"}`` keeps personal data out of
a Slack channel too), and ``event.type``, ``event.id``, ``event.timestamp``,
``event.company_id``, ``event.description``.

Slack: values are escaped (``&``, ``<``, ``>``) before they go into mrkdwn, so an order
note saying ``<!channel>`` cannot page a whole channel; the template's own text is not
escaped (an operator may mean ``<!here>`` or a ``<url|link>``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Mapping

from hub.errors import ValidationError
from hub.outbound.events import EVENT_TYPES

__all__ = ["context", "fill", "slack_message", "email_data", "sms_text", "check_template"]

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)*)\s*\}\}")
SMS_MAX = 1600  # Twilio refuses longer bodies (21617)
SLACK_TEXT_MAX = 3000  # a section block's text limit
SLACK_HEADER_MAX = 150
SLACK_FIELDS_MAX = 10  # a section block holds at most 10 fields
SLACK_FIELD_MAX = 2000
MAX_BLOCKS = 50


def context(event_type: str, event_id: int, company_id: int, created_at: dt.datetime, data: Mapping[str, Any]) -> dict[str, Any]:
    """The values a template may name (see the module docstring)."""
    when = created_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")
    meta = {"type": event_type, "id": f"evt_{event_id}", "timestamp": when, "company_id": company_id,
            "description": EVENT_TYPES.get(event_type, event_type)}
    return {**data, "event": meta}


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


def default_text(ctx: Mapping[str, Any]) -> str:
    """One line: what happened, and the event's plain fields."""
    event = ctx["event"]
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
    fields = [{"type": "mrkdwn", "text": f"*{slack_escape(k)}*\n{slack_escape(_text(v))}"[:SLACK_FIELD_MAX]}
              for k, v in _scalars(ctx)[:SLACK_FIELDS_MAX]]
    # without a text template the default text lists the fields already: show them once, as fields
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
