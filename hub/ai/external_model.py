"""The optional external model: bill lines the hub's own model is unsure of (below the low
threshold) or cannot score yet (no model) are sent to the company's OpenAI-compatible
chat-completions API, which picks an account of the integration's chart for each.

The client is the official `openai` SDK (`OpenAI(base_url=..., api_key=..., max_retries=...,
timeout=...)`): it speaks to any OpenAI-compatible API, retries 429 and 5xx itself (waiting
what Retry-After says) and raises typed errors, which become one sentence each here
(`problem`). Nothing about a call fails the caller: an error is recorded on the call's row and
the lines get no answer.

What is sent, per call of at most `BATCH` lines: a system message with the task and the JSON
wanted, and a user message holding a JSON object with the integration's active chart
(`id`, `name`, `code`, `type`) and the lines (`line` number, `description`, `vendor` name,
`amount`); `temperature` 0, `response_format` json_object, `max_tokens` enough for the
answers. What is kept: an answer whose `account_id` is one of the chart's ids sent; anything
else (another id, a line number not asked, not JSON) is refused and counted on the call's
row. The answer is only ever *suggested* (the caller marks it `source = external`), never
applied: people decide.

Metering and the cap: every call is reserved, then settled, through hub/ai/external_budget.py,
with its tokens as the provider reports them (`usage`) and their cost at the company's prices.
The reservation's worst case bounds the prompt's tokens by its UTF-8 bytes (every BPE token
is at least one byte) plus a per-message allowance, and the reply's by `max_tokens`.

Where it may connect: the base URL's host must resolve to public addresses only, unless
HUB_OUTBOUND_ALLOW admits them (the demo and tests run the emulator on loopback), the same
policy as outbound webhooks (hub/outbound/ssrf.py): a company admin's URL must not make the
hub probe its own network. Checked before each call, redirects not followed. (The check and
the SDK's connection resolve the name separately: a rebinding DNS server could answer
differently in between; the webhooks' sender closes that gap, this client does not.)

The API key is decrypted only to build the client and is never logged or put in a sentence.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Sequence
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.ai import external_budget, external_settings
from hub.ai.external_settings import ApiKey, ExternalSettings
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.schema import gl_account

log = logging.getLogger(__name__)
BATCH = 20  # lines per call: the chart is sent once for all of them
TIMEOUT_S = 20.0
MAX_RETRIES = 2
MAX_DESCRIPTION, MAX_VENDOR = 300, 100
PER_MESSAGE_TOKENS, PRIMING_TOKENS = 8, 16  # allowances above the bytes (OpenAI's chat format uses 3-4 and 3)
REPLY_BASE_TOKENS, REPLY_TOKENS_PER_LINE = 40, 30
SYSTEM = ("You code vendor bill lines to ledger accounts. The user sends a JSON object with the chart of accounts "
          "(\"chart\": id, name, code, type) and the bill lines (\"lines\": line number, description, vendor, amount). For "
          "each line choose the one account of the chart its cost belongs to. Answer only a JSON object: "
          "{\"answers\": [{\"line\": <line number>, \"account_id\": \"<an id from the chart>\", \"confidence\": <0 to 1>}]}. "
          "Use only ids from the chart; when no account fits, give null.")


@dataclass(frozen=True)
class LineToAsk:
    description: str
    vendor: str | None
    amount: float


@dataclass(frozen=True)
class Answer:
    account_id: int
    account_name: str
    confidence: float


class Unusable(Exception):
    """The model's reply could not be read as the JSON asked for."""


def chart(conn: Connection, integration_id: int) -> list[dict[str, Any]]:
    """The integration's active accounts, as the prompt lists them."""
    rows = conn.execute(sa.select(gl_account.c.id, gl_account.c.name, gl_account.c.code, gl_account.c.account_type)
                        .where(gl_account.c.integration_id == integration_id, gl_account.c.is_active)
                        .order_by(gl_account.c.code, gl_account.c.name, gl_account.c.id)).all()
    return [{"id": str(r.id), "name": r.name, **({"code": r.code} if r.code else {}),
             **({"type": r.account_type} if r.account_type else {})} for r in rows]


def messages(accounts: list[dict[str, Any]], lines: Sequence[LineToAsk]) -> list[dict[str, str]]:
    asked = [{"line": n, "description": (line.description or "")[:MAX_DESCRIPTION],
              **({"vendor": line.vendor[:MAX_VENDOR]} if line.vendor else {}), "amount": round(float(line.amount or 0), 2)}
             for n, line in enumerate(lines, start=1)]
    return [{"role": "system", "content": SYSTEM},
            {"role": "user", "content": json.dumps({"chart": accounts, "lines": asked}, ensure_ascii=False, separators=(",", ":"))}]


def prompt_token_bound(sent: list[dict[str, str]]) -> int:
    """An upper bound of the prompt's tokens for any byte-level BPE tokenizer (see the module docstring)."""
    return sum(len(m["content"].encode()) + len(m["role"].encode()) + PER_MESSAGE_TOKENS for m in sent) + PRIMING_TOKENS


def reply_tokens(lines: int) -> int:
    return REPLY_BASE_TOKENS + REPLY_TOKENS_PER_LINE * lines


def worst_cost(setting: ExternalSettings, sent: list[dict[str, str]], max_tokens: int) -> Decimal:
    return (external_budget.token_cost(prompt_token_bound(sent), setting.price_input_per_1k, up=True)
            + external_budget.token_cost(max_tokens, setting.price_output_per_1k, up=True))


def _sdk():
    """The `openai` SDK, imported on first use: it takes about half a second (pydantic models of
    the whole API), which only a process that calls an external model should pay."""
    import openai

    return openai


def client(setting: ExternalSettings, key: ApiKey, *, timeout: float | None = None, max_retries: int | None = None):
    """The SDK's client for the company's API."""
    openai = _sdk()
    return openai.OpenAI(base_url=setting.base_url, api_key=key.reveal(),
                         max_retries=MAX_RETRIES if max_retries is None else max_retries, timeout=timeout or TIMEOUT_S,
                         http_client=openai.DefaultHttpxClient(follow_redirects=False))


def problem(exc: Exception, setting: ExternalSettings) -> tuple[str, bool]:
    """(a sentence for a person, whether the call may have been billed) for an SDK error; never the key
    nor the provider's own message (which may quote the key back). A request sent whose answer
    never came (a read timeout, a connection cut) may have been billed; an HTTP error answer or a
    connection never made was not."""
    openai = _sdk()
    where = setting.host or "the external model"
    # the request never reached the provider (the HTTP client's ConnectError / ConnectTimeout): nothing to bill
    unsent = type(exc.__cause__).__name__ in ("ConnectError", "ConnectTimeout")
    if isinstance(exc, openai.APITimeoutError):
        return f"{where} did not answer within {TIMEOUT_S:g} s (after {MAX_RETRIES} retries)", not unsent
    if isinstance(exc, openai.APIConnectionError):
        return f"could not connect to {where} (after {MAX_RETRIES} retries)", not unsent
    if isinstance(exc, openai.AuthenticationError):
        return f"{where} refused the API key (401): check the key on the AI assist page", False
    if isinstance(exc, openai.PermissionDeniedError):
        return f"{where} refused access to model {setting.model} with this key (403)", False
    if isinstance(exc, openai.NotFoundError):
        return f"{where} has no model {setting.model}, or the base URL is wrong (404)", False
    if isinstance(exc, openai.RateLimitError):
        return f"{where} is rate limiting or out of quota (429) after {MAX_RETRIES} retries", False
    if isinstance(exc, openai.BadRequestError):
        return f"{where} refused the request as malformed (400)", False
    if isinstance(exc, openai.APIStatusError):
        retried = f" (after {MAX_RETRIES} retries)" if exc.status_code >= 500 else ""
        return f"{where} answered HTTP {exc.status_code}{retried}", False
    return f"the call to {where} failed ({type(exc).__name__})", True


def read_answers(content: str | None, accounts: dict[str, str], asked: int) -> tuple[dict[int, Answer], int, list[str]]:
    """The kept answers by line number (1-based), how many were refused, and why (first few)."""
    try:
        data = json.loads(content or "")
    except ValueError:
        raise Unusable("the reply is not JSON") from None
    items = data.get("answers") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise Unusable("the reply has no \"answers\" list")
    kept: dict[int, Answer] = {}
    refused, why = 0, []
    for item in items:
        if not isinstance(item, dict):
            refused += 1
            continue
        line, account = item.get("line"), item.get("account_id")
        if account is None:  # "none fits": an answer, not a refusal
            continue
        if not isinstance(line, int) or isinstance(line, bool) or not 1 <= line <= asked or line in kept:
            refused += 1
            why.append(f"line {str(line)[:10]} was not asked")
            continue
        account = str(account)
        if account not in accounts:
            refused += 1
            why.append(f"line {line}: account '{account[:20]}' is not in the chart")
            continue
        try:
            confidence = min(1.0, max(0.0, float(item.get("confidence", 0.5))))
        except (TypeError, ValueError):
            confidence = 0.5
        kept[line] = Answer(int(account), accounts[account], confidence)
    return kept, refused, why[:3]


def ask(conn: Connection, keyring: Keyring, company_id: int, integration_id: int, lines: Sequence[LineToAsk],
        *, task: str = "line_coding") -> dict[int, Answer]:
    """An account for each line the external model can place, by index into `lines`; {} when the
    company has no usable external model. Each call is metered and capped (module docstring)."""
    setting = external_settings.read(conn, company_id)
    if not setting.usable or not lines:
        return {}
    accounts = chart(conn, integration_id)
    if not accounts:
        return {}
    by_id = {a["id"]: a["name"] for a in accounts}
    engine = conn.engine
    key = external_settings.api_key(conn, keyring, company_id)
    if key is None:
        return {}
    blocked = external_settings.destination_problem(setting.base_url)
    answers: dict[int, Answer] = {}
    sdk = None
    for start in range(0, len(lines), BATCH):
        batch = lines[start:start + BATCH]
        sent = messages(accounts, batch)
        max_tokens = reply_tokens(len(batch))
        held = external_budget.reserve(engine, company_id, integration_id, task, setting.model, len(batch),
                                       worst_cost(setting, sent, max_tokens))
        if held is None:
            continue  # refused by the budget: recorded, nothing sent
        if blocked:
            external_budget.settle(engine, held, outcome="error", detail=f"not called: {blocked}")
            break
        try:
            sdk = sdk or client(setting, key)
            reply = sdk.chat.completions.create(model=setting.model, messages=sent, temperature=0, max_tokens=max_tokens,
                                                response_format={"type": "json_object"})
        except Exception as exc:  # noqa: BLE001 - every SDK error becomes the call's sentence; the import goes on
            sentence, billed = problem(exc, setting)
            log.warning("external model call of company %s failed: %s", company_id, sentence)
            external_budget.settle(engine, held, outcome="error", cost=held.worst if billed else Decimal(0), detail=sentence)
            break  # the next batches would fail the same way: they are asked at the next import
        usage = reply.usage
        tokens_in = int(getattr(usage, "prompt_tokens", 0) or 0)
        tokens_out = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = (external_budget.token_cost(tokens_in, setting.price_input_per_1k)
                + external_budget.token_cost(tokens_out, setting.price_output_per_1k))
        content = reply.choices[0].message.content if reply.choices else None
        try:
            kept, refused, why = read_answers(content, by_id, len(batch))
        except Unusable as exc:
            external_budget.settle(engine, held, outcome="invalid_answer", input_tokens=tokens_in, output_tokens=tokens_out,
                                   cost=cost, refused=len(batch), detail=f"answer not used: {exc}")
            continue
        external_budget.settle(engine, held, outcome="ok", input_tokens=tokens_in, output_tokens=tokens_out, cost=cost,
                               answered=len(kept), refused=refused,
                               detail=("answers refused: " + "; ".join(why)) if why else None)
        for line, answer in kept.items():
            answers[start + line - 1] = answer
    return answers


def check_connection(setting: ExternalSettings, key: ApiKey | None) -> str:
    """Check the settings reach a model (GET /models/{model}: no tokens, no cost); a sentence
    saying it works, or a ValidationError saying why not."""
    if not (setting.base_url and setting.model and key is not None):
        raise ValidationError("save a base URL, a model and an API key first")
    blocked = external_settings.destination_problem(setting.base_url)
    if blocked:
        raise ValidationError(blocked)
    try:
        found = client(setting, key, timeout=10.0, max_retries=0).models.retrieve(setting.model)
    except Exception as exc:  # noqa: BLE001 - shown as a sentence
        raise ValidationError(problem(exc, setting)[0]) from None
    return f"Connected to {setting.host}: model {found.id} is available."
