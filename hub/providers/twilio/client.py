"""Twilio Programmable Messaging client (REST API 2010-04-01; shared/reference/providers.md
section 5.3). Auth is HTTP Basic `AccountSid:AuthToken`, set on the transport's HTTP client
(see connect.py), so the token never sits in a header dict or a repr.

Errors are `{"code", "message", "more_info", "status"}`. The dialect maps Twilio's codes:
20003 (401) reconnect; 21212 / 21606 / 21603 / 21611 / 21701 / 21609 (the From number, the
Messaging Service or the callback URL are wrong) configuration; 21211 / 21610 / 21614 / 21612
/ 21408 / 21602 / 21617 (this recipient or body) record; 20404 not found; 20429 (429, too many
concurrent requests) rate limited; 5xx transient. Twilio queues messages beyond a number's
throughput instead of refusing them, so a send is rarely rate limited.

Creating a message is not idempotent: a send retried after a timeout or a 5xx may text twice.
"""

from __future__ import annotations

from typing import Any

import httpx

from hub.providers.errors import (
    ConfigurationProblem,
    NeedsReauthentication,
    ProviderError,
    RateLimited,
    RecordNotFound,
    RecordProblem,
    TransientProblem,
)
from hub.providers.ratebudget import Limit, RateBudget
from hub.providers.transport import Transport, or_default, retry_after_seconds

NAME = "twilio"
DEFAULT_BASE_URL = "https://api.twilio.com"
API = "/2010-04-01"
LIMITS: tuple[Limit, ...] = ()  # Twilio limits concurrency (20429), not a documented call rate

CONFIGURATION_CODES = frozenset({21212, 21606, 21603, 21611, 21701, 21609, 20008, 21608, 21659, 21660})
RECORD_CODES = frozenset({21211, 21610, 21614, 21612, 21408, 21602, 21617, 21604, 21605, 30006})


class TwilioDialect:
    name = NAME
    default_retry_after_s = 1.0

    def classify(self, response: httpx.Response) -> ProviderError | None:
        status = response.status_code
        if status < 400:
            return None
        try:
            body = response.json()
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        code = body.get("code")
        code = code if isinstance(code, int) else None
        message = str(body.get("message") or "")[:300]
        code_text = str(code) if code is not None else None
        if status == 429 or code == 20429:
            retry_after = or_default(retry_after_seconds(response.headers.get("retry-after")), self.default_retry_after_s)
            return RateLimited(NAME, "too many concurrent requests", status=status, code=code_text, retry_after=retry_after)
        if status >= 500:
            return TransientProblem(NAME, "Twilio is unavailable", status=status, code=code_text)
        if status == 401 or code == 20003:
            return NeedsReauthentication(NAME, "the Account SID / Auth Token were refused; reconnect Twilio", status=status,
                                         code=code_text)
        if status == 404 or code == 20404:
            return RecordNotFound(NAME, "no such message or resource", status=status, code=code_text)
        if code in CONFIGURATION_CODES or status == 403:
            return ConfigurationProblem(NAME, message or "Twilio refused the account's settings", status=status, code=code_text)
        return RecordProblem(NAME, message or "Twilio refused the message", status=status, code=code_text,
                             detail=body.get("more_info") if isinstance(body.get("more_info"), str) else None)

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """Twilio sends no rate-limit headers on success."""


class TwilioClient:
    def __init__(self, transport: Transport, account_sid: str, from_number: str | None = None,
                 messaging_service_sid: str | None = None):
        self.transport, self.account_sid = transport, account_sid
        self.from_number, self.messaging_service_sid = from_number, messaging_service_sid
        self.base = f"{API}/Accounts/{account_sid}"

    def send_sms(self, to: str, body: str, status_callback: str | None = None, from_number: str | None = None) -> dict[str, Any]:
        """Create an outbound message; returns Twilio's message resource (`sid`, `status`
        queued/accepted, `num_segments`, ...). Status changes are POSTed to `status_callback`."""
        if not body:
            raise ValueError("an SMS needs a body")
        form: dict[str, str] = {"To": to, "Body": body}
        sender = from_number or self.from_number
        if sender:
            form["From"] = sender
        elif self.messaging_service_sid:
            form["MessagingServiceSid"] = self.messaging_service_sid
        else:
            raise ValueError("no from number given and the integration has neither from_number nor messaging_service_sid")
        if status_callback:
            form["StatusCallback"] = status_callback
        return self.transport.request("POST", f"{self.base}/Messages.json", data=form).json()

    def message(self, sid: str) -> dict[str, Any]:
        return self.transport.request("GET", f"{self.base}/Messages/{sid}.json").json()

    def numbers(self) -> list[dict[str, Any]]:
        """The account's phone numbers: `{"sid", "phone_number", "friendly_name", "sms", "mms",
        "voice", "status"}`, following Twilio's `next_page_uri`."""
        path: str | None = f"{self.base}/IncomingPhoneNumbers.json"
        params: dict[str, Any] | None = {"PageSize": 100}
        found: list[dict[str, Any]] = []
        while path:
            page = self.transport.request("GET", path, params=params).json()
            for n in page.get("incoming_phone_numbers", []):
                caps = n.get("capabilities") or {}
                found.append({"sid": n.get("sid"), "phone_number": n.get("phone_number"), "friendly_name": n.get("friendly_name"),
                              "sms": bool(caps.get("sms")), "mms": bool(caps.get("mms")), "voice": bool(caps.get("voice")),
                              "status": n.get("status")})
            path, params = page.get("next_page_uri"), None
        return found

    def check(self) -> dict[str, Any]:
        """The credentials work and the configured from number is the account's, SMS-capable."""
        account = self.transport.request("GET", f"{self.base}.json").json()
        numbers = self.numbers()
        summary: dict[str, Any] = {"account": account.get("friendly_name"), "account_status": account.get("status"),
                                   "phone_numbers": len(numbers)}
        if self.from_number:
            match = next((n for n in numbers if n["phone_number"] == self.from_number), None)
            if match is None:
                raise ConfigurationProblem(NAME, f"the from number {self.from_number} is not one of the account's phone numbers")
            if not match["sms"]:
                raise ConfigurationProblem(NAME, f"the from number {self.from_number} cannot send SMS")
            summary.update(from_number=self.from_number, from_number_sms=True)
        return summary
