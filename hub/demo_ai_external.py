"""The demo's external model (`hub demo ai-external`, run by `make demo`): each demo company's
AI assist sends the bill lines its own model is unsure of to the bundled OpenAI-compatible
emulator (emulators/openai_chat), with demo prices and a small monthly budget, so the page's
cost table fills, the 80% notice (`ai.budget_80`) goes out and the cap stops calls within a
demo's lifetime. Idempotent: it sets the same values on every start (the key is stored
encrypted like any other secret).
"""

from __future__ import annotations

from typing import Iterator

from sqlalchemy.engine import Engine

from hub import integrations as store
from hub.ai import external_settings
from hub.crypto import Keyring
from hub.errors import NotFoundError

# the emulator's demo key (emulators/openai_chat DEFAULT_API_KEY: the hub imports no emulator)
DEMO_API_KEY = "sk-emulator-hub-demo-000000000000000000000000"
DEMO_MODEL = "gpt-4o-mini"
# demo prices per 1,000 tokens (a large model's, so a few calls show in the cost table) and a budget of a few dozen calls
DEMO_PRICE_INPUT, DEMO_PRICE_OUTPUT, DEMO_BUDGET = "0.01", "0.03", "0.25"
COMPANIES = ("Acme Builders", "Bella Pizza")


def configure_external(engine: Engine, keyring: Keyring, emulator_url: str) -> Iterator[str]:
    base_url = emulator_url.rstrip("/") + "/v1"
    with engine.begin() as conn:
        for name in COMPANIES:
            try:
                company_id = store.find_company(conn, name).id
            except NotFoundError:
                yield f"{name}: not seeded (run `hub demo seed`); skipped"
                continue
            external_settings.save(conn, keyring, company_id, enabled=True, base_url=base_url, model=DEMO_MODEL,
                                   price_input_per_1k=DEMO_PRICE_INPUT, price_output_per_1k=DEMO_PRICE_OUTPUT,
                                   monthly_budget=DEMO_BUDGET, api_key=DEMO_API_KEY)
            yield (f"{name}: external model {DEMO_MODEL} at {base_url} for lines below the low threshold "
                   f"({DEMO_PRICE_INPUT} / {DEMO_PRICE_OUTPUT} per 1,000 tokens in / out, budget {DEMO_BUDGET} a month)")
