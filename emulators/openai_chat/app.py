"""The HTTP side of the OpenAI-compatible emulator: `/v1/chat/completions`, `/v1/models`,
Bearer authentication and OpenAI's error bodies, and the admin routes (see __init__.py)."""

from __future__ import annotations

import itertools
import json
import secrets
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from emulators.core import ADMIN_PREFIX, EmulatorCore, admin_action
from emulators.openai_chat import model as stand_in

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
FORMATS = ("text", "json_object", "json_schema")
KEYS_URL = "https://platform.openai.com/account/api-keys"
NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth "
          "(i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) if you're accessing the API "
          f"from your browser and are prompted for a username and password. You can obtain an API key from {KEYS_URL}.")
BAD_JSON = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library "
            "correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON. If you have trouble "
            "figuring out how to fix this, please contact us through our help center at help.openai.com.)")
SERVER_ERRORS = {500: "The server had an error while processing your request. Sorry about that!",
                 502: "Bad gateway.", 503: "The server is overloaded or not ready yet.",
                 504: "The server did not respond in time."}
RPM, TPM = 10_000, 2_000_000  # the limits the x-ratelimit-* headers announce (not enforced; faults make 429s)


class OpenAIError(Exception):
    """An answer in OpenAI's error shape: `{"error": {"message", "type", "param", "code"}}`."""

    def __init__(self, status: int, message: str, *, type: str = "invalid_request_error", param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = headers or {}

    def response(self, request_id: str | None = None) -> JSONResponse:
        headers = {"x-request-id": request_id or _request_id(), **self.headers}
        return JSONResponse({"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}},
                            status_code=self.status, headers=headers)


def _request_id() -> str:
    return "req_" + secrets.token_hex(16)


def _masked(key: str) -> str:
    """How OpenAI quotes a wrong key back: its start and its last four characters."""
    return key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 8 else "*" * len(key)


class OpenAIChatEmulator:
    def __init__(self, core: EmulatorCore, api_keys: set[str], models: tuple[str, ...]):
        self.core, self.api_keys = core, set(api_keys)
        self.models = {name: int(core.clock.time()) - 86400 * (len(models) - n) for n, name in enumerate(models)}
        self.completions: list[dict[str, Any]] = []  # every chat completion answered (not the refused requests)
        self.scripted: list[str] = []  # replies to give verbatim, in order, before the stand-in model answers again
        self.lock = threading.Lock()
        self._ids = itertools.count(1)
        self.base_url: str | None = None
        self.app = core.build_app(
            api_routes=[Route("/v1/chat/completions", self._chat, methods=["POST"]),
                        Route("/v1/models", self._models, methods=["GET"]),
                        Route("/v1/models/{model:path}", self._model, methods=["GET"]),
                        Route("/v1/{rest:path}", self._unknown, methods=["GET", "POST", "DELETE", "PUT", "PATCH"])],
            oauth_token_path="/oauth/token", oauth_authorize_path="/oauth/authorize",  # OpenAI has none; unused
            is_api_path=lambda path: path.startswith("/v1/"),
            unauthorized_response=lambda reason: OpenAIError(401, NO_KEY).response(),
            throttle_response=self._throttled,
            error_response=lambda status: OpenAIError(status, SERVER_ERRORS.get(status, "Internal server error."),
                                                      type="server_error").response(),
            admin_routes=self._admin_routes())

    # ---- helpers -------------------------------------------------------------------------------------
    def _throttled(self, retry_after: str):
        model = "the model"
        return OpenAIError(429, f"Rate limit reached for {model} in organization org-emulator on requests per min (RPM): "
                                f"Limit {RPM}, Used {RPM}, Requested 1. Please try again in {retry_after}s. Visit "
                                "https://platform.openai.com/account/rate-limits to learn more.",
                           type="requests", code="rate_limit_exceeded",
                           headers={"Retry-After": retry_after, "x-ratelimit-limit-requests": str(RPM),
                                    "x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": f"{retry_after}s"}
                           ).response()

    def _authenticate(self, request: Request) -> str:
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise OpenAIError(401, NO_KEY)
        with self.lock:
            known = key in self.api_keys
        if not known:
            raise OpenAIError(401, f"Incorrect API key provided: {_masked(key)}. You can find your API key at {KEYS_URL}.",
                              code="invalid_api_key")
        return key

    def _headers(self, request_id: str, started: float) -> dict[str, str]:
        return {"x-request-id": request_id, "openai-version": "2020-10-01", "openai-organization": "org-emulator",
                "openai-processing-ms": str(max(1, int((time.monotonic() - started) * 1000))),
                "x-ratelimit-limit-requests": str(RPM), "x-ratelimit-remaining-requests": str(RPM - 1),
                "x-ratelimit-reset-requests": "6ms", "x-ratelimit-limit-tokens": str(TPM),
                "x-ratelimit-remaining-tokens": str(TPM - 1), "x-ratelimit-reset-tokens": "0s"}

    # ---- /v1/models ----------------------------------------------------------------------------------
    async def _models(self, request: Request) -> Response:
        request_id, started = _request_id(), time.monotonic()
        try:
            self._authenticate(request)
        except OpenAIError as exc:
            return exc.response(request_id)
        with self.lock:
            data = [{"id": name, "object": "model", "created": created, "owned_by": "system"} for name, created in self.models.items()]
        return JSONResponse({"object": "list", "data": data}, headers=self._headers(request_id, started))

    async def _model(self, request: Request) -> Response:
        request_id, started = _request_id(), time.monotonic()
        name = request.path_params["model"]
        try:
            self._authenticate(request)
            with self.lock:
                created = self.models.get(name)
            if created is None:
                raise OpenAIError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        except OpenAIError as exc:
            return exc.response(request_id)
        return JSONResponse({"id": name, "object": "model", "created": created, "owned_by": "system"},
                            headers=self._headers(request_id, started))

    async def _unknown(self, request: Request) -> Response:
        try:
            self._authenticate(request)
        except OpenAIError as exc:
            return exc.response()
        return OpenAIError(404, f"Invalid URL ({request.method} {request.url.path})").response()

    # ---- /v1/chat/completions ------------------------------------------------------------------------
    async def _chat(self, request: Request) -> Response:
        request_id, started = _request_id(), time.monotonic()
        try:
            self._authenticate(request)
            try:
                body = json.loads(await request.body())
            except ValueError:
                raise OpenAIError(400, BAD_JSON) from None
            if not isinstance(body, dict):
                raise OpenAIError(400, BAD_JSON)
            params = _validate(body)
            with self.lock:
                known = params["model"] in self.models
            if not known:
                raise OpenAIError(404, f"The model `{params['model']}` does not exist or you do not have access to it.",
                                  code="model_not_found")
        except OpenAIError as exc:
            return exc.response(request_id)
        messages = params["messages"]
        with self.lock:
            scripted = self.scripted.pop(0) if self.scripted else None
            number = next(self._ids)
        content = scripted if scripted is not None else stand_in.answer(messages, params["json"])
        finish = "stop"
        completion_tokens = stand_in.count_tokens(content)
        if params["max_tokens"] is not None and completion_tokens > params["max_tokens"]:
            content = content.encode()[: params["max_tokens"] * 4].decode("utf-8", "ignore")
            completion_tokens, finish = params["max_tokens"], "length"
        prompt_tokens = stand_in.prompt_tokens(messages)
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                 "total_tokens": prompt_tokens + completion_tokens,
                 "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                 "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                               "rejected_prediction_tokens": 0}}
        created = int(self.core.clock.time())
        answer = {
            "id": f"chatcmpl-emu{number:021d}", "object": "chat.completion", "created": created, "model": params["model"],
            "choices": [{"index": i, "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                         "logprobs": None, "finish_reason": finish} for i in range(params["n"])],
            "usage": usage, "service_tier": "default", "system_fingerprint": "fp_emulator01",
        }
        with self.lock:
            self.completions.append({"id": answer["id"], "model": params["model"], "messages": messages, "content": content,
                                     "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                                     "finish_reason": finish, "scripted": scripted is not None, "at": created})
        return JSONResponse(answer, headers=self._headers(request_id, started))

    # ---- admin ---------------------------------------------------------------------------------------
    def usage(self) -> dict[str, int]:
        with self.lock:
            return {"completions": len(self.completions),
                    "prompt_tokens": sum(c["prompt_tokens"] for c in self.completions),
                    "completion_tokens": sum(c["completion_tokens"] for c in self.completions)}

    def script(self, content: str, count: int = 1) -> None:
        """The next `count` completions answer `content` verbatim (a malformed or wrong answer, for tests)."""
        with self.lock:
            self.scripted.extend([content] * count)

    def _admin_routes(self) -> list[Route]:
        async def completions(request: Request) -> Response:
            if request.method == "DELETE":
                with self.lock:
                    self.completions.clear()
            with self.lock:
                items = [{k: v for k, v in c.items() if k != "messages"} for c in self.completions]
            totals = self.usage()
            return JSONResponse({"completions": items, "count": totals["completions"], "prompt_tokens": totals["prompt_tokens"],
                                 "completion_tokens": totals["completion_tokens"]})

        def script(body: dict) -> dict:
            content, count = body["content"], int(body.get("count", 1))
            if not isinstance(content, str) or count < 1:
                raise ValueError("content must be a string and count at least 1")
            self.script(content, count)
            return {"scripted": len(self.scripted)}

        def keys(body: dict) -> dict:
            key = body["key"]
            if not isinstance(key, str) or not key:
                raise ValueError("key must be a non-empty string")
            with self.lock:
                (self.api_keys.discard if body.get("revoked") else self.api_keys.add)(key)
            return {"ok": True}

        def models(body: dict) -> dict:
            name = body["id"]
            if not isinstance(name, str) or not name:
                raise ValueError("id must be a non-empty string")
            with self.lock:
                self.models.setdefault(name, int(self.core.clock.time()))
            return {"models": sorted(self.models)}

        return [Route(f"{ADMIN_PREFIX}/completions", completions, methods=["GET", "DELETE"]),
                Route(f"{ADMIN_PREFIX}/script", admin_action(script), methods=["POST"]),
                Route(f"{ADMIN_PREFIX}/keys", admin_action(keys), methods=["POST"]),
                Route(f"{ADMIN_PREFIX}/models", admin_action(models), methods=["POST"])]


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise OpenAIError(400, f"Invalid type for '{name}': expected a decimal, but got {type(value).__name__} instead.",
                          param=name, code="invalid_type")
    if value < low:
        raise OpenAIError(400, f"Invalid '{name}': decimal below minimum value. Expected a value >= {low:g}, but got "
                               f"{value} instead.", param=name, code="decimal_below_min_value")
    if value > high:
        raise OpenAIError(400, f"Invalid '{name}': decimal above maximum value. Expected a value <= {high:g}, but got "
                               f"{value} instead.", param=name, code="decimal_above_max_value")
    return float(value)


def _integer(body: dict, name: str, low: int, high: int | None = None) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise OpenAIError(400, f"Invalid type for '{name}': expected an integer, but got {type(value).__name__} instead.",
                          param=name, code="invalid_type")
    if value < low or (high is not None and value > high):
        raise OpenAIError(400, f"Invalid '{name}': integer out of range. Expected a value between {low} and "
                               f"{high if high is not None else 'the model maximum'}, but got {value} instead.",
                          param=name, code="integer_out_of_range" if value >= low else "integer_below_min_value")
    return value


def _validate(body: dict) -> dict[str, Any]:
    """The request's parameters, or the 400 OpenAI gives for the first thing wrong."""
    for name in ("model", "messages"):
        if name not in body:
            raise OpenAIError(400, f"Missing required parameter: '{name}'.", param=name, code="missing_required_parameter")
    if not isinstance(body["model"], str):
        raise OpenAIError(400, f"Invalid type for 'model': expected a string, but got {type(body['model']).__name__} instead.",
                          param="model", code="invalid_type")
    messages = body["messages"]
    if not isinstance(messages, list):
        raise OpenAIError(400, f"Invalid type for 'messages': expected an array, but got {type(messages).__name__} instead.",
                          param="messages", code="invalid_type")
    if not messages:
        raise OpenAIError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty "
                               "array instead.", param="messages", code="empty_array")
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise OpenAIError(400, f"Invalid type for 'messages[{i}]': expected an object, but got {type(message).__name__} "
                                   "instead.", param=f"messages[{i}]", code="invalid_type")
        if "role" not in message:
            raise OpenAIError(400, f"Missing required parameter: 'messages[{i}].role'.", param=f"messages[{i}].role",
                              code="missing_required_parameter")
        if message["role"] not in ROLES:
            raise OpenAIError(400, f"Invalid value: '{message['role']}'. Supported values are: 'system', 'assistant', 'user', "
                                   "'function', 'tool', and 'developer'.", param=f"messages[{i}].role", code="invalid_value")
        content = message.get("content")
        if content is None and message["role"] != "assistant":
            raise OpenAIError(400, f"Missing required parameter: 'messages[{i}].content'.", param=f"messages[{i}].content",
                              code="missing_required_parameter")
        if content is not None and not isinstance(content, (str, list)):
            raise OpenAIError(400, f"Invalid type for 'messages[{i}].content': expected one of a string or array of objects, "
                                   f"but got {type(content).__name__} instead.", param=f"messages[{i}].content",
                              code="invalid_type")
    _number(body, "temperature", 0, 2)
    _number(body, "top_p", 0, 1)
    n = _integer(body, "n", 1, 128) or 1
    max_tokens = _integer(body, "max_completion_tokens", 1)
    if max_tokens is None:
        max_tokens = _integer(body, "max_tokens", 1)
    if body.get("stream"):
        raise OpenAIError(400, "This emulator does not stream: send 'stream': false (or leave it out).", param="stream",
                          code="unsupported_value")
    wants_json = False
    response_format = body.get("response_format")
    if response_format is not None:
        kind = response_format.get("type") if isinstance(response_format, dict) else None
        if kind not in FORMATS:
            raise OpenAIError(400, f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', and 'text'.",
                              param="response_format.type", code="invalid_value")
        wants_json = kind != "text"
        if kind == "json_object" and not any("json" in stand_in.message_text(m).lower() for m in messages):
            raise OpenAIError(400, "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                                   "'json_object'.", param="messages")
    return {"model": body["model"], "messages": messages, "n": n, "max_tokens": max_tokens, "json": wants_json}
