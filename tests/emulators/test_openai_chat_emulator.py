"""The OpenAI-compatible emulator (emulators/openai_chat) driven by the official `openai` SDK,
unchanged but for its base URL: completions in OpenAI's response shape with token usage, the
stand-in model's deterministic coding of bill lines, OpenAI's error bodies mapped by the SDK to
its exception types, the SDK's own retries honouring Retry-After, replies cut at max_tokens,
and the admin routes the hub's tests use (scripted replies, request counts)."""

from __future__ import annotations

import json
import math
import time

import httpx
import openai
import pytest

from emulators.openai_chat import DEFAULT_API_KEY, create_emulator
from emulators.serve import serve

pytestmark = pytest.mark.timeout(60)

CHART = [{"id": "11", "name": "Lumber & Framing", "code": "500"}, {"id": "12", "name": "Fuel", "code": "510"},
         {"id": "13", "name": "Electrical Materials", "code": "520"}, {"id": "14", "name": "Food Cost - Dairy & Eggs"},
         {"id": "15", "name": "Dump & Disposal Fees"}]


@pytest.fixture
def api():
    emulator = create_emulator()
    with serve(emulator.app) as url:
        yield emulator, url


def client(url: str, **options) -> openai.OpenAI:
    return openai.OpenAI(base_url=url + "/v1", api_key=options.pop("api_key", DEFAULT_API_KEY), **options)


def coding_messages(lines: list[dict]) -> list[dict]:
    return [{"role": "system", "content": "Code each bill line to one account of the chart. Answer JSON."},
            {"role": "user", "content": json.dumps({"chart": CHART, "lines": lines})}]


def tokens(text: str) -> int:
    """The emulator's documented count: ceil(UTF-8 bytes / 4), at least 1."""
    return max(1, math.ceil(len(text.encode()) / 4))


def test_a_completion_in_openais_shape_with_usage(api):
    emulator, url = api
    messages = coding_messages([{"line": 1, "description": "diesel 40 gal", "vendor": "Fleet Fuel Co", "amount": 182.5}])
    answer = client(url).chat.completions.create(model="gpt-4o-mini", messages=messages, temperature=0,
                                                 response_format={"type": "json_object"}, max_tokens=200)
    assert answer.object == "chat.completion" and answer.id.startswith("chatcmpl-") and answer.model == "gpt-4o-mini"
    [choice] = answer.choices
    assert choice.index == 0 and choice.message.role == "assistant" and choice.finish_reason == "stop"
    content = choice.message.content
    [picked] = json.loads(content)["answers"]
    assert (picked["line"], picked["account_id"]) == (1, "12") and 0.5 < picked["confidence"] <= 0.95  # "diesel": Fuel
    expected_prompt = sum(4 + tokens(m["content"]) + tokens(m["role"]) for m in messages) + 3
    assert answer.usage.prompt_tokens == expected_prompt
    assert answer.usage.completion_tokens == tokens(content)
    assert answer.usage.total_tokens == expected_prompt + tokens(content)
    # the raw answer: the keys OpenAI sends, and its headers
    raw = httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
                     json={"model": "gpt-4o-mini", "messages": messages})
    assert raw.status_code == 200 and raw.headers["x-request-id"].startswith("req_") and "openai-processing-ms" in raw.headers
    body = raw.json()
    assert set(body) >= {"id", "object", "created", "model", "choices", "usage", "system_fingerprint"}
    assert set(body["usage"]) >= {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert body["choices"][0]["message"]["content"] == content  # deterministic: the same request, the same reply
    assert emulator.usage() == {"completions": 2, "prompt_tokens": 2 * expected_prompt, "completion_tokens": 2 * tokens(content)}


def test_the_stand_in_codes_lines_by_their_words_and_a_trade_lexicon(api):
    _, url = api
    lines = [{"line": 1, "description": "2x4x8 SPF stud x 120"}, {"line": 2, "description": "12/2 Romex NM-B 250ft"},
             {"line": 3, "description": "shredded mozzarella 4x5lb"},
             {"line": 4, "description": "30 yd roll-off dumpster", "vendor": "Fleet Fuel Co"},  # the words win over the vendor
             {"line": 5, "description": "see attached"}, {"line": 6, "description": "invoice 4471", "vendor": "Fleet Fuel Co"}]
    answer = client(url).chat.completions.create(model="gpt-4o", messages=coding_messages(lines),
                                                 response_format={"type": "json_object"})
    picked = {a["line"]: a["account_id"] for a in json.loads(answer.choices[0].message.content)["answers"]}
    # "see attached" names nothing: null, as allowed; "invoice 4471" has only its vendor's name to go by
    assert picked == {1: "11", 2: "13", 3: "14", 4: "15", 5: None, 6: "12"}
    # no chart and lines: a JSON object saying so (json_object), or a sentence
    plain = client(url).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hello there"}])
    assert "emulator" in plain.choices[0].message.content
    asked = client(url).chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "reply in json"}],
                                                response_format={"type": "json_object"})
    assert json.loads(asked.choices[0].message.content)["words"] == 3


def test_errors_are_openais_and_map_to_the_sdks_exception_types(api):
    _, url = api
    ok = [{"role": "user", "content": "hi"}]
    wrong = "sk-wrong-0000000000000000000000secret1234"
    with pytest.raises(openai.AuthenticationError) as refused:
        client(url, api_key=wrong, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=ok)
    assert refused.value.status_code == 401 and refused.value.code == "invalid_api_key"
    assert wrong not in str(refused.value) and wrong[-4:] in str(refused.value)  # quoted back masked, as OpenAI does
    missing = httpx.post(url + "/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": ok})
    assert missing.status_code == 401 and missing.json()["error"]["code"] is None
    assert missing.json()["error"]["message"].startswith("You didn't provide an API key")
    with pytest.raises(openai.NotFoundError) as unknown:
        client(url).chat.completions.create(model="gpt-9-imaginary", messages=ok)
    assert unknown.value.code == "model_not_found" and "gpt-9-imaginary" in unknown.value.message
    with pytest.raises(openai.NotFoundError):
        client(url).models.retrieve("gpt-9-imaginary")
    assert client(url).models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    assert [m.id for m in client(url).models.list()] == ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
    bad = {"temperature": ({"temperature": 3}, "decimal_above_max_value", "temperature"),
           "empty": ({"messages": []}, "empty_array", "messages"),
           "role": ({"messages": [{"role": "robot", "content": "x"}]}, "invalid_value", "messages[0].role"),
           "json": ({"response_format": {"type": "json_object"}}, None, "messages")}
    for name, (change, code, param) in bad.items():
        with pytest.raises(openai.BadRequestError) as problem:
            client(url, max_retries=0).chat.completions.create(**{"model": "gpt-4o-mini", "messages": ok, **change})
        assert (problem.value.code, problem.value.param) == (code, param), name
    raw = httpx.post(url + "/v1/chat/completions", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}",
                                                            "Content-Type": "application/json"}, content=b"{not json")
    assert raw.status_code == 400 and raw.json()["error"]["type"] == "invalid_request_error"
    assert raw.json()["error"]["message"].startswith("We could not parse the JSON body")
    nothing = httpx.get(url + "/v1/assistants", headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"})
    assert nothing.status_code == 404 and nothing.json()["error"]["message"] == "Invalid URL (GET /v1/assistants)"


def test_the_sdk_retries_429_after_retry_after_and_5xx(api):
    emulator, url = api
    ok = [{"role": "user", "content": "hi"}]
    httpx.post(url + "/_emulator/faults", json={"burst_429": 2, "retry_after_s": 1}).raise_for_status()
    started = time.monotonic()
    answer = client(url, max_retries=2).chat.completions.create(model="gpt-4o-mini", messages=ok)
    waited = time.monotonic() - started
    assert answer.choices[0].message.content and 2.0 <= waited < 4.0  # two waits of Retry-After: 1 s, not the SDK's backoff
    assert emulator.core.stats()["by_status"] == {"200": 1, "429": 2}
    # out of retries: the SDK's RateLimitError, with OpenAI's body and the header
    httpx.post(url + "/_emulator/faults", json={"burst_429": 3, "retry_after_s": 1}).raise_for_status()
    with pytest.raises(openai.RateLimitError) as limited:
        client(url, max_retries=1).chat.completions.create(model="gpt-4o-mini", messages=ok)
    assert limited.value.code == "rate_limit_exceeded" and limited.value.response.headers["retry-after"] == "1"
    httpx.delete(url + "/_emulator/faults").raise_for_status()
    # a 500: InternalServerError without retries, an answer with one
    httpx.post(url + "/_emulator/faults", json={"fail_next_5xx": 1, "status_5xx": 500}).raise_for_status()
    with pytest.raises(openai.InternalServerError) as failed:
        client(url, max_retries=0).chat.completions.create(model="gpt-4o-mini", messages=ok)
    assert failed.value.status_code == 500 and failed.value.body["type"] == "server_error"
    httpx.post(url + "/_emulator/faults", json={"fail_next_5xx": 1, "status_5xx": 503}).raise_for_status()
    assert client(url, max_retries=1).chat.completions.create(model="gpt-4o-mini", messages=ok).choices
    # a slow answer: the SDK's timeout
    httpx.post(url + "/_emulator/faults", json={"reply_delay_ms": 1500}).raise_for_status()
    with pytest.raises(openai.APITimeoutError):
        client(url, max_retries=0, timeout=0.5).chat.completions.create(model="gpt-4o-mini", messages=ok)


def test_a_reply_is_cut_at_max_tokens_and_scripted_replies_come_first(api):
    emulator, url = api
    lines = [{"line": n, "description": f"diesel {n} gal"} for n in range(1, 11)]
    cut = client(url).chat.completions.create(model="gpt-4o-mini", messages=coding_messages(lines), max_tokens=5)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 5
    assert len(cut.choices[0].message.content.encode()) <= 20
    scripted = '{"answers": [{"line": 1, "account_id": "999", "confidence": 0.9}]}'
    httpx.post(url + "/_emulator/script", json={"content": scripted, "count": 1}).raise_for_status()
    first = client(url).chat.completions.create(model="gpt-4o-mini", messages=coding_messages(lines[:1]))
    second = client(url).chat.completions.create(model="gpt-4o-mini", messages=coding_messages(lines[:1]))
    assert first.choices[0].message.content == scripted
    assert json.loads(second.choices[0].message.content)["answers"][0]["account_id"] == "12"
    seen = httpx.get(url + "/_emulator/completions").json()
    assert seen["count"] == len(seen["completions"]) == 3
    assert [c["scripted"] for c in seen["completions"]] == [False, True, False]
    assert seen["prompt_tokens"] == sum(c["prompt_tokens"] for c in seen["completions"])
    assert httpx.post(url + "/_emulator/script", json={"content": 5}).status_code == 400
    # another key, then revoked
    httpx.post(url + "/_emulator/keys", json={"key": "sk-second-key-0000000000"}).raise_for_status()
    assert client(url, api_key="sk-second-key-0000000000").models.list().data
    httpx.post(url + "/_emulator/keys", json={"key": "sk-second-key-0000000000", "revoked": True}).raise_for_status()
    with pytest.raises(openai.AuthenticationError):
        client(url, api_key="sk-second-key-0000000000", max_retries=0).models.list()
