"""An OpenAI-compatible chat-completions API, faithful enough that the official `openai` Python
SDK works against it unchanged:

    client = openai.OpenAI(base_url=url + "/v1", api_key=DEFAULT_API_KEY)
    client.chat.completions.create(model="gpt-4o-mini", messages=[...], response_format={"type": "json_object"})

It is the hub's optional external model in the demo and the tests (hub/ai/external_model.py):
the hub sends it bill lines its own model is unsure about, with the integration's chart of
accounts, and meters the tokens each call reports. Modules: `model` (the deterministic
stand-in that reads the prompt and picks an account; token counting), `app` (routes, auth,
errors, validation, admin).

Routes (all need `Authorization: Bearer <key>`):
| method and path | does |
|---|---|
| POST /v1/chat/completions | `model`, `messages` (role system/developer/user/assistant/tool, content a string or text parts), `temperature` 0..2, `top_p`, `n`, `max_tokens` / `max_completion_tokens`, `response_format` text / json_object / json_schema -> a `chat.completion` with `usage.prompt_tokens`, `completion_tokens`, `total_tokens` |
| GET /v1/models, /v1/models/{id} | the models this account has (`DEFAULT_MODELS`) |

Errors, OpenAI's shape `{"error": {"message", "type", "param", "code"}}` with `x-request-id`:
401 without a key (code null) or with an unknown one (`invalid_api_key`, the key quoted back
masked); 404 `model_not_found` for a model not listed; 400 `invalid_request_error` for a body
that is not JSON, a missing or mistyped parameter (`missing_required_parameter`,
`invalid_type`, `empty_array`, `invalid_value`, `decimal_above_max_value`, ...), and for
`json_object` without the word "json" in the messages (OpenAI's rule); 404 "Invalid URL" for
other `/v1` paths. A reply longer than `max_tokens` is cut there (`finish_reason: "length"`).

Faults (emulators/faults.py, `POST /_emulator/faults`): `burst_429` answers OpenAI's 429
`rate_limit_exceeded` (type `requests`) with `Retry-After` in seconds, `fail_next_5xx` /
`error_rate_5xx` a 5xx with type `server_error`, `latency_ms` / `reply_delay_ms` slow answers
(a client's timeout). The SDK retries 429 and 5xx itself, waiting what Retry-After says.

Admin routes (besides the framework's, see core.py; `GET /_emulator/stats` counts every API
request that reached the emulator, faulted ones included):
| method and path | body | does |
|---|---|---|
| GET, DELETE /_emulator/completions | - | `{"completions": [{model, prompt_tokens, completion_tokens, content, ...}], "count", "prompt_tokens", "completion_tokens"}` / forget them |
| POST /_emulator/script | `{"content", "count"?: 1}` | the next completions reply `content` verbatim (a wrong or malformed answer) |
| POST /_emulator/keys | `{"key", "revoked"?: bool}` | accept another API key / stop accepting one |
| POST /_emulator/models | `{"id"}` | list another model |

Choices where OpenAI's behaviour is not copied: no streaming (400), no tools or function
calls, no organisation or project headers checked, no real rate limiting (the
`x-ratelimit-*` headers announce fixed limits; faults make the 429s), ids `chatcmpl-emu<n>`.
"""

from __future__ import annotations

from emulators.core import EmulatorCore
from emulators.oauth import RefreshPolicy
from emulators.openai_chat.app import OpenAIChatEmulator, OpenAIError
from emulators.openai_chat.model import count_tokens

DEFAULT_API_KEY = "sk-emulator-hub-demo-000000000000000000000000"
DEFAULT_MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini")

__all__ = ["DEFAULT_API_KEY", "DEFAULT_MODELS", "OpenAIChatEmulator", "OpenAIError", "count_tokens", "create_emulator"]


def create_emulator(*, api_keys: tuple[str, ...] = (DEFAULT_API_KEY,), models: tuple[str, ...] = DEFAULT_MODELS
                    ) -> OpenAIChatEmulator:
    """An OpenAI-compatible account answering to `api_keys`, with `models`."""
    return OpenAIChatEmulator(EmulatorCore("openai_chat", RefreshPolicy(access_ttl=3600)), set(api_keys), tuple(models))
