"""Twilio SendGrid v3 client: mail send, dynamic templates, verified senders
(shared/reference/providers.md section 5.2). Auth is a static API key sent as a bearer token.

Errors are `{"errors": [{"message", "field", "help"}]}`: 400 is a problem with the message
(RecordProblem, with the fields named), 401 a refused key (reconnect), 403 a key without the
scope or a from address that is not a verified sender (configuration), 413 a message too
large, 429 rate limited. SendGrid documents `X-RateLimit-Limit/Remaining/Reset` (Unix
seconds) and no Retry-After, so a 429 waits until the reset time.

Mail send is not idempotent (no idempotency key): a send retried after a timeout or a 5xx may
deliver twice. A 429 is refused before sending and is safe to retry.
"""

from __future__ import annotations

import time
from typing import Any, Iterable
from urllib.parse import parse_qs, urlsplit

import httpx

from hub.providers.errors import ConfigurationProblem, NeedsReauthentication, ProviderError, RateLimited, RecordProblem, TransientProblem
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.transport import Transport, retry_after_seconds

NAME = "sendgrid"
DEFAULT_BASE_URL = "https://api.sendgrid.com"
LIMITS: tuple[Limit, ...] = ()  # per-endpoint limits are not published; the headers say what is left


def _errors(response: httpx.Response) -> list[dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return []
    errors = body.get("errors") if isinstance(body, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _reset_wait(response: httpx.Response) -> float | None:
    reset = response.headers.get("x-ratelimit-reset", "")
    return max(0.0, int(reset) - time.time()) if reset.isdigit() else None


class SendGridDialect:
    name = NAME
    default_retry_after_s = 1.0

    def classify(self, response: httpx.Response) -> ProviderError | None:
        status = response.status_code
        if status < 400:
            return None
        errors = _errors(response)
        first = errors[0] if errors else {}
        message = str(first.get("message") or "")[:300]
        fields = ", ".join(sorted({str(e["field"]) for e in errors if e.get("field")}))
        if status == 429:
            retry_after = retry_after_seconds(response.headers.get("retry-after"))
            if retry_after is None:
                retry_after = _reset_wait(response)
            return RateLimited(NAME, "rate limited", status=429,
                               retry_after=self.default_retry_after_s if retry_after is None else max(retry_after, 0.0))
        if status >= 500:
            return TransientProblem(NAME, "SendGrid is unavailable", status=status)
        if status == 401:
            return NeedsReauthentication(NAME, "the API key was refused; enter a valid key", status=401)
        if status == 403:
            if first.get("field") == "from":
                return ConfigurationProblem(NAME, "the from address is not a verified sender (verify it in SendGrid, or "
                                                  "authenticate its domain)", status=403, code="from")
            return ConfigurationProblem(NAME, message or "the API key lacks the permission for this call", status=403)
        if status == 413:
            return RecordProblem(NAME, "the message is too large for SendGrid", status=413)
        detail = "; ".join(f"{e.get('field') or '-'}: {str(e.get('message') or '')[:200]}" for e in errors[:5]) or None
        return RecordProblem(NAME, message or "SendGrid refused the request", status=status, code=fields or None, detail=detail)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        remaining = response.headers.get("x-ratelimit-remaining", "")
        if remaining.isdigit():
            budget.report_remaining("endpoint", int(remaining))
            wait = _reset_wait(response)
            if int(remaining) == 0 and wait is not None and response.status_code != 429:
                budget.block_for(wait, "endpoint")


def _people(value: str | dict[str, Any] | Iterable[str | dict[str, Any]] | None) -> list[dict[str, Any]]:
    if value is None:
        return []
    items = [value] if isinstance(value, (str, dict)) else list(value)
    people = []
    for item in items:
        if isinstance(item, str):
            people.append({"email": item})
        elif isinstance(item, dict) and isinstance(item.get("email"), str):
            people.append({k: v for k, v in item.items() if k in ("email", "name")})
        else:
            raise ValueError("a recipient is an email address or {'email', 'name'?}")
    return people


class SendGridClient:
    def __init__(self, transport: Transport, from_email: str | None = None, from_name: str | None = None):
        self.transport, self.from_email, self.from_name = transport, from_email, from_name

    def send(self, to: str | dict[str, Any] | Iterable[str | dict[str, Any]], from_email: str | None = None, *,
             template_id: str | None = None, subject: str | None = None, content: str | list[dict[str, str]] | None = None,
             html: str | None = None, dynamic_data: dict[str, Any] | None = None, custom_args: dict[str, Any] | None = None,
             categories: list[str] | None = None, cc: Any = None, bcc: Any = None, reply_to: str | None = None,
             from_name: str | None = None) -> str:
        """Send one email (one personalization); returns SendGrid's `X-Message-Id` (event
        webhook `sg_message_id`s start with it). Either `template_id` (+ `dynamic_data`) or
        `subject` + `content` (plain text, or a list of `{"type", "value"}`) and/or `html`.
        `custom_args` come back on every event of this message."""
        sender = from_email or self.from_email
        if not sender:
            raise ValueError("no from address given and the integration has no from_email")
        if template_id is None and not (subject and (content or html)):
            raise ValueError("give template_id, or subject with content/html")
        personalization: dict[str, Any] = {"to": _people(to)}
        if not personalization["to"]:
            raise ValueError("at least one recipient is needed")
        for name, value in (("cc", cc), ("bcc", bcc)):
            if value:
                personalization[name] = _people(value)
        if dynamic_data:
            personalization["dynamic_template_data"] = dynamic_data
        if custom_args:
            personalization["custom_args"] = {str(k): str(v) for k, v in custom_args.items()}
        message: dict[str, Any] = {"personalizations": [personalization], "from": {"email": sender}}
        name = from_name or (self.from_name if sender == self.from_email else None)
        if name:
            message["from"]["name"] = name
        if subject:
            message["subject"] = subject
        blocks: list[dict[str, str]] = []
        if isinstance(content, str):
            blocks.append({"type": "text/plain", "value": content})
        elif content:
            blocks.extend(content)
        if html:
            blocks.append({"type": "text/html", "value": html})
        if blocks:
            message["content"] = blocks
        if template_id:
            message["template_id"] = template_id
        if categories:
            message["categories"] = list(categories)
        if reply_to:
            message["reply_to"] = {"email": reply_to}
        response = self.transport.request("POST", "/v3/mail/send", json=message)
        return response.headers.get("x-message-id", "")

    def templates(self, generations: str = "dynamic", page_size: int = 200) -> list[dict[str, Any]]:
        """Templates (dynamic by default) with their active version's subject:
        `{"id", "name", "generation", "updated_at", "subject", "active_version_id"}`."""
        params: dict[str, Any] = {"generations": generations, "page_size": page_size}
        found: list[dict[str, Any]] = []
        while True:
            body = self.transport.request("GET", "/v3/templates", params=params).json()
            for template in body.get("result", []):
                active = next((v for v in template.get("versions", []) if v.get("active")), None)
                found.append({"id": template.get("id"), "name": template.get("name"), "generation": template.get("generation"),
                              "updated_at": template.get("updated_at"), "subject": (active or {}).get("subject"),
                              "active_version_id": (active or {}).get("id")})
            following = (body.get("_metadata") or {}).get("next")
            token = parse_qs(urlsplit(following).query).get("page_token", [None])[0] if following else None
            if not token or token == params.get("page_token"):
                return found
            params["page_token"] = token

    def verified_senders(self) -> list[dict[str, Any]]:
        """Sender identities: `{"id", "from_email", "from_name", "nickname", "verified", "locked"}`."""
        body = self.transport.request("GET", "/v3/verified_senders", params={"limit": 100}).json()
        keys = ("id", "from_email", "from_name", "nickname", "verified", "locked")
        return [{k: s.get(k) for k in keys} for s in body.get("results", [])]

    def create_verified_sender(self, *, nickname: str, from_email: str, reply_to: str, address: str, city: str, country: str,
                               from_name: str = "", reply_to_name: str = "", state: str = "", zip_code: str = "") -> dict[str, Any]:
        """Start a Single Sender Verification (POST /v3/verified_senders): SendGrid creates the
        identity unverified and mails a link to `from_email`; the sender is verified once
        someone there clicks it. Returns the identity as `verified_senders` lists it."""
        body = {"nickname": nickname, "from_email": from_email, "from_name": from_name, "reply_to": reply_to,
                "reply_to_name": reply_to_name, "address": address, "city": city, "state": state, "zip": zip_code,
                "country": country}
        created = self.transport.request("POST", "/v3/verified_senders", json={k: v for k, v in body.items() if v}).json()
        keys = ("id", "from_email", "from_name", "nickname", "verified", "locked")
        return {k: created.get(k) for k in keys}

    def resend_verification(self, sender_id: int) -> None:
        """Mail the verification link of an unverified sender again."""
        self.transport.request("POST", f"/v3/verified_senders/resend/{int(sender_id)}", json={})

    def event_webhook_public_key(self) -> str:
        """The verification key of the signed Event Webhook ("" when signing is off)."""
        return str(self.transport.request("GET", "/v3/user/webhooks/event/settings/signed").json().get("public_key") or "")

    def check(self) -> dict[str, Any]:
        """The key works and the configured from address is a verified sender."""
        senders = self.verified_senders()
        summary: dict[str, Any] = {"verified_senders": sum(1 for s in senders if s["verified"])}
        if self.from_email:
            match = next((s for s in senders if str(s["from_email"]).lower() == self.from_email.lower()), None)
            summary.update(from_email=self.from_email, from_verified=bool(match and match["verified"]))
            if match is None:
                summary["from_status"] = "not a sender identity (fine if its domain is authenticated)"
            elif not match["verified"]:
                summary["from_status"] = "verification pending"
        return summary
