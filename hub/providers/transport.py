"""The one HTTP stack every provider client uses.

`Transport.request` sends one logical request and deals with everything a real provider
does to it:
- **auth**: a bearer token from the `TokenStore`, refreshed shortly before it expires and
  once more on a 401 (the provider may expire tokens early);
- **rate budget**: waits for the client-side budget (`RateBudget`) and feeds it the
  provider's limit headers; a used-up daily/hourly quota raises `QuotaExhausted` at once;
- **retries** (tenacity): 429, 5xx, timeouts and dropped connections are retried with
  exponential backoff and full jitter, or after the provider's `Retry-After` (seconds or
  an HTTP date) when it gives one, capped at `RetrySettings.max_retry_after_s`; past the
  cap the error is raised instead of sleeping for an hour;
- **errors**: the provider's `Dialect.classify` turns a response into the taxonomy of
  `errors.py` (re-authenticate, configuration, transient, record);
- **giving up** (`RetrySettings.give_up_for_s`, off by default): once a request to an account
  has used up its retries on a transient problem (the provider is down), later requests to
  that account from the same process fail at once, without calling, for that long. A sync
  run's steps share one process: in an outage its first step retries for ~8 s and the other
  steps fail in milliseconds with the same error, instead of each retrying on its own
  (a QuickBooks run in a 503 outage: 26 s and 24 calls without it, bench/nightly_fanout.py).

Logs name the method, path and status, never headers, bodies or query strings.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Protocol

import httpx
import orjson
import tenacity

from hub.providers.errors import NeedsReauthentication, ProviderError, QuotaExhausted, RateLimited, TransientProblem
from hub.providers.ratebudget import RateBudget
from hub.providers.tokens import OAuthClient, TokenStore, Tokens, exchange_refresh_token, expired

log = logging.getLogger("hub.providers")


@dataclass(frozen=True)
class RetrySettings:
    max_attempts: int = 6
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    max_retry_after_s: float = 65.0
    timeout_s: float = 30.0
    give_up_for_s: float = 0.0  # see the module docstring; needs the transport's `account`


class _GivenUp:
    """Accounts whose requests used up their retries on a transient problem, in this process:
    account -> (until when, what happened), read by the next request to the same account."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until: dict[str, tuple[float, str]] = {}

    def note(self, account: str, seconds: float, what: str) -> None:
        with self._lock:
            self._until[account] = (time.monotonic() + seconds, what)

    def reason(self, account: str) -> str | None:
        with self._lock:
            found = self._until.get(account)
            if found is None:
                return None
            if time.monotonic() >= found[0]:
                del self._until[account]
                return None
            return found[1]

    def clear(self) -> None:
        with self._lock:
            self._until.clear()


GIVEN_UP = _GivenUp()


class Dialect(Protocol):
    """A provider's wire details that the transport needs."""

    name: str

    def classify(self, response: httpx.Response) -> ProviderError | None:
        """The error a response stands for, or None when it is a success."""
        ...

    def read_headers(self, response: httpx.Response, budget: RateBudget) -> None:
        """Feed the provider's rate-limit headers into the budget."""
        ...


# an idle pooled connection is dropped after this, under the 5 s idle timeout of common servers
# (uvicorn, Node): reusing one the server has just closed fails the request mid-way, and for a
# write that is not idempotent (an SMS) the outcome is then unknown
KEEPALIVE_S = 4.0


def http_client(**kwargs: Any) -> httpx.Client:
    """The providers' HTTP client: no redirects followed, idle connections dropped in time."""
    return httpx.Client(follow_redirects=False, limits=httpx.Limits(keepalive_expiry=KEEPALIVE_S), **kwargs)


def json_body(response: httpx.Response) -> Any:
    """A response's JSON. orjson first: a page of 1000 records parses in a third of json's
    time, the same values for valid JSON; what it refuses (another encoding, NaN, huge ints)
    goes through httpx's own `json()`, which raises ValueError if it is not JSON at all."""
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return response.json()


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Retry-After as seconds: delta-seconds or an HTTP date (RFC 9110)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def or_default(value: float | None, default: float) -> float:
    """`value` unless it is missing (0 is a real answer: "retry now")."""
    return default if value is None else value


@dataclass
class Transport:
    dialect: Dialect
    base_url: str
    budget: RateBudget
    token_store: TokenStore | None = None
    oauth: OAuthClient | None = None
    retry: RetrySettings = field(default_factory=RetrySettings)
    headers: dict[str, str] = field(default_factory=dict)
    http: httpx.Client | None = None
    bearer_factory: Callable[[], str] | None = None  # self-signed tokens (DoorDash JWT), made per request
    account: str | None = None  # "<provider>:<account id>": what giving up (RetrySettings.give_up_for_s) is remembered for
    calls: int = 0  # HTTP requests sent to the API (not the token endpoint)
    retries: int = 0
    refreshes: int = 0
    _tokens: Tokens | None = None

    def __post_init__(self) -> None:
        if self.http is None:
            self.http = http_client(timeout=self.retry.timeout_s)

    def close(self) -> None:
        if self.http is not None:
            self.http.close()

    # ---- auth ------------------------------------------------------------------------
    def _bearer(self, force_refresh: bool = False) -> str | None:
        if self.bearer_factory is not None:
            return self.bearer_factory()
        if self.token_store is None:
            return None
        if self._tokens is None:
            self._tokens = self.token_store.load()
        if force_refresh or not self._tokens.fresh():
            stale = expired(self._tokens) if force_refresh else self._tokens
            assert self.oauth is not None, "a token store needs an OAuth client to refresh with"
            oauth, http = self.oauth, self.http

            def exchange(refresh_token: str) -> Tokens:
                self.refreshes += 1
                return exchange_refresh_token(http, oauth, refresh_token)

            self._tokens = self.token_store.refresh(stale, exchange)
        return self._tokens.access_token

    # ---- requests --------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries; return a success response or raise a ProviderError."""
        give_up = self.retry.give_up_for_s > 0 and self.account is not None
        if give_up and (earlier := GIVEN_UP.reason(self.account)):
            raise TransientProblem(self.dialect.name, f"not called: {earlier}")
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.retry.max_attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(TransientProblem),
            before_sleep=self._before_sleep(method, path),
            reraise=True,
        )
        try:
            return retrying(self._send_once, method, path, **kwargs)
        except RateLimited:
            raise  # a busy account, not a down one: QuotaExhausted and the budget deal with it
        except TransientProblem as exc:
            if give_up:
                status = f" [HTTP {exc.status}]" if exc.status else ""
                GIVEN_UP.note(self.account, self.retry.give_up_for_s,
                              f"{exc.message}{status} (gave up after {self.retry.max_attempts} attempts at "
                              f"{time.strftime('%H:%M:%S')}; not called again from this process for "
                              f"{self.retry.give_up_for_s:.0f} s)")
            raise

    def _send_once(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._send(method, path, self._bearer(), **kwargs)
        if response.status_code == 401 and self.token_store is not None:
            # the provider dropped our access token early: refresh once and resend
            response = self._send(method, path, self._bearer(force_refresh=True), **kwargs)
            if response.status_code == 401:
                raise NeedsReauthentication(self.dialect.name, "the provider refused a freshly refreshed token; reconnect the integration", status=401)
        error = self.dialect.classify(response)
        if error is None:
            return response
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.retry.max_retry_after_s:
                raise QuotaExhausted(
                    self.dialect.name,
                    f"rate limited for {error.retry_after / 60:.0f} min ({error.message}); try again later",
                    status=error.status,
                    code=error.code,
                    retry_after=error.retry_after,
                )
            self.budget.block_for(error.retry_after, "rate")
        raise error

    def _send(self, method: str, path: str, bearer: str | None, **kwargs: Any) -> httpx.Response:
        self.budget.acquire()
        headers = {"Accept": "application/json", **self.headers, **kwargs.pop("headers", {})}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        url = path if path.startswith("http") else f"{self.base_url}{path}"
        self.calls += 1
        try:
            response = self.http.request(method, url, headers=headers, **kwargs)
        except httpx.TimeoutException:
            raise TransientProblem(self.dialect.name, f"{method} {path} timed out") from None
        except httpx.TransportError as exc:  # refused, reset, dropped mid-body
            raise TransientProblem(self.dialect.name, f"{method} {path} failed: {type(exc).__name__}") from None
        self.dialect.read_headers(response, self.budget)
        return response

    def _wait(self, retry_state: tenacity.RetryCallState) -> float:
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            return min(float(retry_after), self.retry.max_retry_after_s)
        ceiling = min(self.retry.max_delay_s, self.retry.base_delay_s * 2 ** (retry_state.attempt_number - 1))
        return random.uniform(0, ceiling)  # full jitter

    def _before_sleep(self, method: str, path: str):
        def before_sleep(retry_state: tenacity.RetryCallState) -> None:
            self.retries += 1
            error = retry_state.outcome.exception()
            log.warning(
                "%s %s %s: %s; retry %d in %.2fs",
                self.dialect.name, method, path, getattr(error, "kind", "error"), retry_state.attempt_number,
                retry_state.upcoming_sleep,
            )

        return before_sleep

    def stats(self) -> dict[str, Any]:
        return {
            "api_calls": self.calls,
            "retries": self.retries,
            "token_refreshes": self.refreshes,
            "rate_wait_s": round(self.budget.waited_s, 3),
            **{f"quota_remaining_{name}": value for name, value in self.budget.remaining.items()},
        }
