"""The dispatcher's sender for notification routes: Slack, SendGrid and Twilio.

The dispatcher hands it one claimed attempt (`Target` = the route's endpoint row, `Message`
= the event); it renders the message, sends it to each recipient through the provider's
client, and returns one `Outcome`. Retries, the delivery log and auto-disable stay the
dispatcher's (hub/outbound).

Sends are not idempotent at these providers, so:
* every provider client here is built with **one attempt** (`SEND_RETRY`): the transport's
  own retries (which would resend after a timeout or a 5xx) are off;
* each recipient's send goes through the ledger (message_ledger.py): marked ``sending`` before the
  call, ``accepted``/``not_sent``/``refused``/``unknown`` after; a retry of the delivery
  sends only to recipients still ``not_sent``;
* an error is *not sent* only when the provider said so before sending (429, 4xx refusals,
  auth) or the connection was never made (refused, connect timeout): those are retried on
  the route's schedule. A timeout after the request left, a cut connection or a 5xx is
  **unknown**: recorded, never resent automatically (``hub notify resend`` after a person
  checked). For email, the SendGrid event webhook may still settle it (status.py matches
  the custom arg ``hub_message_id``).

Rate limits, without blocking other companies or channels:
* Slack: about one message per second per channel (`Pacer`, key = integration + channel
  id; 1.05 s from when the previous request left, so jitter does not cost a 429);
  Slack routes also have concurrency 1 (routes.py), so a channel's messages keep order;
* a 429's Retry-After (SendGrid: its reset time) holds that key in the pacer, so this
  worker sends nothing more there until then, and becomes the attempt's retry time
  (``Outcome.retry_after``; routes allow up to 100x the scheduled wait);
* provider calls are blocking (the clients are httpx-sync), so they run on this sender's
  own thread pool, at most `per_integration` at once per integration: one slow provider
  account cannot take every thread. Each client has its own rate budget, not the
  process-wide one per account, so a 429 on #ops never makes a post to #alerts sleep.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable

import httpx
from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.crypto import Keyring
from hub.errors import HubError, NotFoundError
from hub.notify import callbacks, message_ledger, render
from hub.notify.pacing import Pacer
from hub.notify.routes import Route, get_route
from hub.outbound.payload import shape
from hub.outbound.senders import Message, Outcome, Target
from hub.providers import registry
from hub.providers.connect import open_client
from hub.providers.errors import (
    ConfigurationProblem,
    NeedsReauthentication,
    ProviderError,
    RateLimited,
    RecordProblem,
    TransientProblem,
)
from hub.providers.protocols import MessagingClient
from hub.providers.ratebudget import RateBudget
from hub.providers.sendgrid.client import SendGridClient
from hub.providers.slack.client import SlackClient
from hub.providers.transport import RetrySettings
from hub.providers.twilio.client import TwilioClient
from hub.redact import describe_error

__all__ = ["NotificationSender", "SEND_RETRY", "classify"]

log = logging.getLogger("hub.notify")

SEND_RETRY = RetrySettings(max_attempts=1, timeout_s=10.0, max_retry_after_s=86400.0)
ERROR_MAX = 600
_NEVER_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@dataclass(frozen=True)
class _Route:
    route: Route
    active: bool
    callback_url: str | None  # Twilio StatusCallback


@dataclass(frozen=True)
class _Job:
    recipient: str
    key: tuple  # pacer key
    interval: float
    call: Callable[[Any], tuple[str, str | None, str]]  # the kind's concrete client -> (status, provider id, summary)


@dataclass
class _Result:
    recipient: str
    status: str
    detail: str | None = None
    retry_after: float | None = None
    http_status: int | None = None
    summary: str | None = None
    provider_id: str | None = None  # Slack ts, SendGrid X-Message-Id, Twilio MessageSid


def classify(exc: BaseException, provider: str) -> tuple[str, str, float | None, int | None]:
    """(ledger status, detail, retry_after, HTTP status) of a failed send."""
    status = getattr(exc, "status", None)
    if isinstance(exc, RateLimited) or (isinstance(exc, ProviderError) and exc.kind == "quota_exhausted"):
        wait = exc.retry_after if exc.retry_after is not None else 1.0
        return "not_sent", f"rate limited by {provider}, Retry-After {wait:g} s", wait, status
    if isinstance(exc, TransientProblem):
        if isinstance(exc.__context__, _NEVER_SENT):
            return "not_sent", f"{exc} (no connection: nothing was sent)", None, status
        return "unknown", f"outcome unknown ({exc}): it may have been sent; not retried automatically", None, status
    if isinstance(exc, (NeedsReauthentication, ConfigurationProblem)):
        return "not_sent", str(exc), None, status
    if isinstance(exc, RecordProblem):
        return "refused", str(exc) + (f" ({exc.detail})" if exc.detail else ""), None, status
    if isinstance(exc, ValueError):
        return "refused", f"cannot send: {describe_error(exc)}", None, None
    if isinstance(exc, HubError):  # building the client: integration gone, key missing, bad config
        return "not_sent", str(exc), None, None
    return "unknown", f"outcome unknown: {describe_error(exc)}", None, None


class NotificationSender:
    """One instance serves the ``slack``, ``sendgrid`` and ``twilio`` sender kinds."""

    def __init__(
        self,
        engine: Engine,
        keyring: Keyring,
        *,
        public_url: str | None = None,
        max_threads: int = 32,
        per_integration: int = 4,
        slack_interval: float = 1.05,
        max_pace_wait: float = 20.0,
        client_ttl: float = 300.0,
        client_factory: Callable[..., MessagingClient] | None = None,
    ) -> None:
        self.engine, self.keyring, self.public_url = engine, keyring, public_url
        self.per_integration, self.slack_interval, self.max_pace_wait = per_integration, slack_interval, max_pace_wait
        self.client_ttl = client_ttl
        self._factory = client_factory or open_client
        self._pool = ThreadPoolExecutor(max_threads, thread_name_prefix="notify-send")
        self.pacer = Pacer()
        self._clients: dict[tuple, tuple[float, MessagingClient]] = {}
        self._gates: dict[int, asyncio.Semaphore] = {}
        self._retired: set[MessagingClient] = set()  # replaced clients, closed a little later
        self._closed = False

    # ---- the Sender interface --------------------------------------------------------------
    async def send(self, target: Target, message: Message) -> Outcome:
        started, t0 = time.time(), time.perf_counter()

        def done(outcome: Outcome) -> Outcome:
            outcome.duration_ms = int((time.perf_counter() - t0) * 1000)
            return outcome

        try:
            loaded = await self._run(self._load, target.endpoint_id)
        except NotFoundError:
            return done(Outcome(False, started, error="not a notification route (create routes with `hub notify add-route`)",
                                retryable=False))
        except Exception as exc:  # the database: retry on schedule
            return done(Outcome(False, started, error=f"cannot read the route: {describe_error(exc)}"))
        route = loaded.route
        if not loaded.active:
            return done(Outcome(False, started, error=f"the {route.provider} integration {route.integration_id} is disabled; nothing sent"))
        ctx = render.context(message.event_type, message.event_id, message.company_id, message.created_at,
                             shape(message.data, target.payload))
        try:
            jobs = self._jobs(route, ctx, message, loaded.callback_url)
        except (ValueError, HubError) as exc:
            return done(Outcome(False, started, error=f"cannot render the message: {describe_error(exc)}", retryable=False))
        try:
            slots = await self._run(partial(
                message_ledger.begin, self.engine, endpoint_id=route.id, event_id=message.event_id, attempt=message.attempt,
                message_id=message.message_id, integration_id=route.integration_id, provider=route.provider,
                recipients=[j.recipient for j in jobs]))
        except Exception as exc:  # nothing was sent: the ledger comes first
            return done(Outcome(False, started, error=f"cannot record the send: {describe_error(exc)}"))
        timeout = target.policy.timeout
        results = await asyncio.gather(*(self._one(route, slot, job, timeout) for slot, job in zip(slots, jobs)))
        return done(self._outcome(route, message, results, started))

    async def forget(self, endpoint_id: int) -> None:
        """Nothing is kept per endpoint (clients are per integration and channel)."""

    async def aclose(self) -> None:
        if self._closed:  # registered under three kinds: closed three times
            return
        self._closed = True
        clients, self._clients = self._clients, {}
        retired, self._retired = self._retired, set()
        for client in [c for _, c in clients.values()] + list(retired):
            try:
                client.transport.close()
            except Exception:  # closing must not hide why we stop
                pass
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ---- one delivery ----------------------------------------------------------------------
    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def _load(self, endpoint_id: int) -> _Route:
        with self.engine.connect() as conn:
            route = get_route(conn, endpoint_id)
            item = store.get_integration(conn, self.keyring, route.integration_id)
            url = None
            if route.kind == "sms":
                base = callbacks.public_base(item.config, self.public_url)
                url = callbacks.status_url(base, "twilio", callbacks.inbound_endpoint_id(conn, route.integration_id))
        return _Route(route, item.is_active, url)

    def _jobs(self, route: Route, ctx: dict[str, Any], message: Message, callback_url: str | None) -> list[_Job]:
        integration_id = route.integration_id
        if route.kind == "slack":
            text, blocks = render.slack_message(route.template, ctx)
            channel = str(route.target)

            def post(client: SlackClient) -> tuple[str, str | None, str]:
                posted = client.post_message(channel, text=text, blocks=blocks)
                return "delivered", posted.get("ts"), f"posted to {posted.get('channel')} ts {posted.get('ts')}"

            return [_Job(channel, ("slack", integration_id, channel), self.slack_interval, post)]
        if route.kind == "email":
            data = render.email_data(ctx)
            template_id = route.template["template_id"]
            custom = {"hub_message_id": message.message_id, "hub_event_id": str(message.event_id)}

            def mail(to: str, client: SendGridClient) -> tuple[str, str | None, str]:
                message_id = client.send(to, template_id=template_id, dynamic_data=data, custom_args=custom)
                return "accepted", message_id or None, f"accepted for {to}, X-Message-Id {message_id}"

            return [_Job(to, ("sendgrid", integration_id), 0.0, partial(mail, to)) for to in route.recipients]
        body = render.sms_text(route.template, ctx)

        def text(to: str, client: TwilioClient) -> tuple[str, str | None, str]:
            created = client.send_sms(to, body, status_callback=callback_url)
            return "accepted", created.get("sid"), f"{created.get('status')} for {to}, {created.get('sid')}"

        return [_Job(to, ("twilio", integration_id), 0.0, partial(text, to)) for to in route.recipients]

    async def _one(self, route: Route, slot: message_ledger.Slot, job: _Job, timeout: float) -> _Result:
        if not slot.send:
            return _Result(slot.recipient, slot.status, slot.detail)
        key = (route.integration_id, route.provider, job.key[2] if route.kind == "slack" else "", timeout)
        try:  # before pacing: building a client (database, decryption) must not eat into the slot
            client = await self._client(key, route.integration_id, timeout)
        except Exception as exc:
            # nothing was sent: whatever went wrong (integration gone, key missing, config), a retry may work
            result = _Result(slot.recipient, "not_sent", f"cannot build the {route.provider} client: {describe_error(exc)}"[:ERROR_MAX])
        else:
            held = await self.pacer.wait(job.key, job.interval, self.max_pace_wait)
            if held is not None:
                result = _Result(slot.recipient, "not_sent", f"held back {held:.0f} s by the {route.provider} rate limit of "
                                                             "this channel or account", held)
            else:
                gate = self._gates.setdefault(route.integration_id, asyncio.Semaphore(self.per_integration))
                async with gate:
                    result = await self._call(route, job, key, client)
        await self._record(slot.row_id, result)
        return result

    async def _call(self, route: Route, job: _Job, key: tuple, client: MessagingClient) -> _Result:
        def timed() -> tuple[float, tuple[str, str | None, str]]:
            return time.monotonic(), job.call(client)

        try:
            sent_at, (status, provider_id, summary) = await self._run(timed)
            if job.interval:  # the next slot counts from when this request really left
                self.pacer.not_before(job.key, sent_at + job.interval)
        except Exception as exc:
            status, detail, retry_after, http_status = classify(exc, route.provider)
            if retry_after is not None:
                self.pacer.hold(job.key, retry_after)
            if not isinstance(exc, (RateLimited, RecordProblem, ValueError)):
                self._drop(key)  # new credentials or settings are read on the next attempt
            if status == "unknown":
                log.warning("%s route %s: send to one recipient has an unknown outcome: %s", route.provider, route.id, detail)
            return _Result(job.recipient, status, detail[:ERROR_MAX], retry_after, http_status)
        return _Result(job.recipient, status, None, summary=summary, provider_id=provider_id)

    async def _client(self, key: tuple, integration_id: int, timeout: float) -> MessagingClient:
        cached = self._clients.get(key)
        if cached is not None and time.monotonic() - cached[0] < self.client_ttl:
            return cached[1]
        client = await self._run(partial(self._factory, self.engine, self.keyring, integration_id,
                                         retry=RetrySettings(max_attempts=1, timeout_s=timeout,
                                                             max_retry_after_s=SEND_RETRY.max_retry_after_s)))
        # a budget of its own: a 429 blocks this client's key only (the pacer does the waiting)
        client.transport.budget = RateBudget(client.transport.dialect.name, (), max_wait_s=1.0)
        old = self._clients.get(key)
        self._clients[key] = (time.monotonic(), client)
        if old is not None:
            self._close_later(old[1])
        return client

    def _drop(self, key: tuple) -> None:
        old = self._clients.pop(key, None)
        if old is not None:
            self._close_later(old[1])

    def _close_later(self, client: MessagingClient) -> None:
        """Close a replaced client once calls still using it are over (they end within
        their timeout); closing it now would cut them, and a cut send is an unknown one."""
        delay = client.transport.retry.timeout_s * 2 + 5
        self._retired.add(client)

        def close() -> None:
            if client not in self._retired:
                return
            self._retired.discard(client)
            try:
                self._pool.submit(client.transport.close)
            except RuntimeError:  # the pool is shut down: aclose closed what it had
                pass

        asyncio.get_running_loop().call_later(delay, close)

    async def _record(self, row_id: int, result: _Result) -> None:
        """The outcome into the ledger; retried briefly, since a lost write leaves the row
        'sending' and the next attempt would call it unknown."""
        for wait in (0.2, 1.0, 3.0, None):
            try:
                await self._run(partial(message_ledger.finish, self.engine, row_id, result.status,
                                        provider_message_id=result.provider_id, detail=result.detail))
                return
            except Exception as exc:
                if wait is None:
                    log.error("notification message %s: cannot record %s: %s", row_id, result.status, describe_error(exc))
                    return
                await asyncio.sleep(wait)

    # ---- the attempt's outcome ---------------------------------------------------------------
    @staticmethod
    def _outcome(route: Route, message: Message, results: list[_Result], started: float) -> Outcome:
        sent = [r for r in results if r.status in message_ledger.DONE]
        summaries = [r.summary for r in results if r.summary] or [f"{len(sent)} recipient(s) already sent"]
        if len(sent) == len(results):
            return Outcome(True, started, status_code=registry.get(route.provider).messaging.accepted_status,
                           response_body=f"{route.provider}: " + "; ".join(summaries))
        failed = [r for r in results if r.status not in message_ledger.DONE]
        waits = [r.retry_after for r in failed if r.status == "not_sent" and r.retry_after is not None]
        codes = [r.http_status for r in failed if r.http_status]
        what = "; ".join(f"{r.recipient if route.kind != 'slack' else '#' + (route.target_name or str(route.target))}: "
                         f"{r.status}" + (f" - {r.detail}" if r.detail else "") for r in failed)
        error = f"{len(failed)} of {len(results)} not sent: {what}"
        if any(r.status == "unknown" for r in failed):
            hint = f" [resend after checking: hub notify resend --route {route.id} --event {message.event_id}]"
            error = error[: ERROR_MAX - len(hint)] + hint
        outcome = Outcome(False, started, status_code=codes[-1] if codes else None, error=error[:ERROR_MAX],
                          retryable=any(r.status == "not_sent" for r in failed),
                          retry_after=max(waits) if waits else None)
        if sent:
            outcome.response_body = f"{route.provider}: " + "; ".join(summaries)
        return outcome
