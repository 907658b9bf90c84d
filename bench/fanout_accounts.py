"""Many provider accounts behind one emulator server, for bench/nightly_fanout.py.

Each integration of the fan-out is its own provider account, as in production: its own
QuickBooks realm, Xero organisation or Procore company, with its own generated data, OAuth
grant and per-account rate limits. One emulator object is made per account (emulators/, seeded
by the account number) and `AccountRouter` serves them all from one port: `/a/<n>/...` is
account n's API, so an integration's `base_url` is `http://127.0.0.1:<port>/a/<n>` and its
`token_url` that plus the provider's token path. Running 1,000 uvicorn servers, or letting
1,000 integrations share one realm (and so one rate budget), would both be less honest.

The router strips the prefix before the emulator sees the request and puts it back into the
`Link` headers it sends (Procore's paging links are absolute URLs). Router-wide admin calls:
- `POST /_router/grants {"client_id"}`: one refresh token per account, in account order, as if
  each company's user had connected;
- `POST /_router/faults {...}`: the same FaultPlan change on every account (an outage:
  `{"error_rate_5xx": 1.0}`); `DELETE` resets them;
- `GET /_router/stats`: API requests by status, summed over the accounts.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from starlette.types import Message, Receive, Scope, Send

CLIENT_ID, CLIENT_SECRET = "hub-bench", "hub-bench-secret"

# account n's identity at each provider
QUICKBOOKS_REALM0, PROCORE_COMPANY0 = 9130350000100000, 562949953500000


def account_id(provider: str, n: int) -> str:
    if provider == "quickbooks":
        return str(QUICKBOOKS_REALM0 + n)
    if provider == "xero":
        return f"b0e0c0a0-0000-4000-8000-{n:012d}"
    if provider == "procore":
        return str(PROCORE_COMPANY0 + n)
    raise ValueError(f"no accounts for {provider}")


def grant_subject(provider: str, n: int) -> dict[str, Any]:
    key = {"quickbooks": "realmId", "xero": "tenantId", "procore": "company_id"}[provider]
    value = account_id(provider, n)
    return {key: int(value) if provider == "procore" else value}


TOKEN_PATHS = {"quickbooks": "/oauth2/v1/tokens/bearer", "xero": "/connect/token", "procore": "/oauth/token"}

# per account: the demo's sizes (emulators/registry.py), a small company's books or jobs
SIZES = {
    "quickbooks": {"vendors": 25, "bills": 40, "invoices": 10, "accounts": 20},
    "xero": {"contacts": 25, "invoices": 40, "accounts": 20},
    "procore": {"projects": 3, "rfis_per_project": 12, "submittals_per_project": 8, "daily_logs_per_project": 10},
}


def integration_config(provider: str, base: str, n: int) -> dict[str, str]:
    """What an integration stores to reach account n behind the router at `base`."""
    url = f"{base}/a/{n}"
    field = {"quickbooks": "realm_id", "xero": "tenant_id", "procore": "company_id"}[provider]
    return {field: account_id(provider, n), "base_url": url, "token_url": url + TOKEN_PATHS[provider]}


def create_account(provider: str, n: int):
    clients = {CLIENT_ID: CLIENT_SECRET}
    if provider == "quickbooks":
        from emulators.quickbooks import create_emulator

        return create_emulator(**SIZES[provider], seed=n, realm_id=account_id(provider, n), clients=clients)
    if provider == "xero":
        from emulators.xero import create_emulator

        return create_emulator(**SIZES[provider], seed=n, tenant_id=account_id(provider, n), clients=clients)
    if provider == "procore":
        from emulators.procore import create_emulator

        return create_emulator(**SIZES[provider], seed=n, company_id=int(account_id(provider, n)), clients=clients)
    raise ValueError(f"no emulator for {provider}")


class AccountRouter:
    """ASGI app: `/a/<n>/<rest>` to account n's emulator as `/<rest>`; `/_router/...` admin."""

    def __init__(self, provider: str, accounts: list):
        self.provider, self.accounts = provider, accounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path.startswith("/_router/"):
            await self._admin(scope, receive, send)
            return
        parts = path.split("/", 3)  # "", "a", n, rest
        if len(parts) < 3 or parts[1] != "a" or not parts[2].isdigit() or int(parts[2]) >= len(self.accounts):
            await _json(send, 404, {"error": f"no account at {path}"})
            return
        prefix, rest = f"/a/{parts[2]}", "/" + (parts[3] if len(parts) > 3 else "")
        inner = {**scope, "path": rest, "raw_path": rest.encode()}

        async def send_with_prefix(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [(k, _prefixed(v, prefix) if k.lower() == b"link" else v)
                                                  for k, v in message.get("headers", [])]}
            await send(message)

        await self.accounts[int(parts[2])].app(inner, receive, send_with_prefix)

    async def _admin(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        data = json.loads(body or b"{}")
        what, method = scope["path"][len("/_router/"):], scope["method"]
        if what == "health":
            await _json(send, 200, {"provider": self.provider, "accounts": len(self.accounts)})
        elif what == "grants" and method == "POST":
            tokens = [a.core.oauth.issue_refresh_token(data.get("client_id", CLIENT_ID), grant_subject(self.provider, n))
                      for n, a in enumerate(self.accounts)]
            await _json(send, 200, {"refresh_tokens": tokens})
        elif what == "faults" and method in ("POST", "DELETE"):
            for a in self.accounts:
                a.core.faults.reset() if method == "DELETE" else a.core.faults.configure(**data)
            await _json(send, 200, {"accounts": len(self.accounts)})
        elif what == "stats":
            by_status: Counter[str] = Counter()
            tokens = 0
            for a in self.accounts:
                s = a.core.stats()
                by_status.update(s["by_status"])
                tokens += s["token_requests"]
            await _json(send, 200, {"api_requests": sum(by_status.values()), "by_status": dict(by_status), "token_requests": tokens})
        else:
            await _json(send, 404, {"error": f"no admin call {method} {scope['path']}"})


def _prefixed(link: bytes, prefix: str) -> bytes:
    """`<http://host:port/rest>; rel=...` -> `<http://host:port/a/n/rest>; rel=...` for every link."""
    out = []
    for part in link.decode("latin-1").split(","):
        head, sep, tail = part.partition(">")
        scheme, _, after = head.partition("://")
        host, slash, path = after.partition("/")
        out.append(f"{scheme}://{host}{prefix}{slash}{path}{sep}{tail}")
    return ",".join(out).encode("latin-1")


async def _json(send: Send, status: int, payload: Any) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


def build(provider: str, count: int) -> AccountRouter:
    return AccountRouter(provider, [create_account(provider, n) for n in range(count)])
