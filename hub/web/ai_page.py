"""/settings/integrations/ai: the AI assist's page (issue 14), company-wide like the webhooks
page. Four parts, each a form of its own:

- processing preferences: each task on or off, auto-apply or suggest-only, which of the
  company's accounting integrations (`/preferences`);
- confidence thresholds per task, with what the line-coding ones mean on the newest model's
  held-out evaluation, as a chart and a table of the same numbers (`/thresholds`);
- learning feedback: the open suggestions, accepted, rejected or corrected one by one or
  in bulk (`/feedback`), and accuracy over time;
- the optional external model, an OpenAI-compatible API for the lines the assist's own model
  is unsure of (`/external`; `/external/test` asks the API for the saved model, at no cost);
- cost monitoring per task and month at the company's price per CPU hour (`/price`), and the
  external model's calls, tokens and cost per month against its budget.

Everything is written through the engine (hub/ai/settings.py, hub/ai/feedback.py) in one
transaction per POST: a refused value rolls the whole form back and the page is shown again
(400) with the sentence and what was typed. Admins change, viewers read (403). Suggestion
and integration ids come in the form; one of another company answers 404, like one that
does not exist (the engine looks suggestions up within the company).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from hub.ai import external_model, external_settings, feedback, settings
from hub.crypto import Keyring
from hub.errors import NotFoundError, ValidationError
from hub.schema import AI_TASKS
from hub.web import ai_view
from hub.web.context import Context

if TYPE_CHECKING:
    from hub.web.pages import SettingsPages

BASE = settings.PAGE
MAX_BULK = 500
VERDICT_WORDS = {"accept": "accepted", "reject": "rejected", "correct": "corrected"}
NEVER_SHOWN = ("csrf_token", "api_key")  # not shown again after a refusal (the key never reaches the page)


def _text(form: FormData, name: str, limit: int = 40) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _id(value: Any, what: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise ValidationError(f"'{str(value)[:20]}' is not {what}") from None
    if number <= 0:
        raise ValidationError(f"'{number}' is not {what}")
    return number


class AIPage:
    def __init__(self, pages: "SettingsPages") -> None:
        self.pages, self.engine = pages, pages.engine

    # ---- the page -------------------------------------------------------------------------
    def _render(self, request: Request, context: Context, status: int = 200, problem: dict | None = None,
                typed: dict | None = None) -> Response:
        """The page; `problem` = {"part": which form, "text": the sentence} after a refusal,
        `typed` what that form carried (shown again instead of the stored values)."""
        with self.engine.connect() as conn:
            values = ai_view.load(conn, context.company_id)
        return self.pages.render(request, "ai.html", status, ctx=context, csrf=context.csrf, flash=request.session.pop("flash", None),
                                 problem=problem or {}, typed=typed or {}, pct=ai_view.pct, **values)

    async def page(self, request: Request, context: Context) -> Response:
        return await run_in_threadpool(self._render, request, context)

    # ---- actions --------------------------------------------------------------------------
    def _admin(self, context: Context) -> None:
        if not context.is_admin:
            raise HTTPException(403, "Only an admin of this company can change its AI assist.")

    def _action(self, part: str, work, lead: str = "Not saved"):
        """A POST of one part: CSRF and session (`_post`), admin (403), then `work(conn,
        context, form)` in one transaction; it returns the flash. A ValidationError rolls
        it back and shows the page again with the sentence (after `lead`); NotFoundError is 404."""

        async def handler(request: Request, context: Context, form: FormData) -> Response:
            self._admin(context)

            def run() -> Response:
                try:
                    with self.engine.begin() as conn:
                        text = work(conn, context, form)
                except NotFoundError as exc:
                    raise HTTPException(404, str(exc)) from None
                except ValidationError as exc:
                    typed = {k: v for k, v in form.multi_items() if isinstance(v, str) and k not in NEVER_SHOWN}
                    typed["_list"] = {k: form.getlist(k) for k in ("integration",)}
                    return self._render(request, context, 400, {"part": part, "text": str(exc), "lead": lead}, typed)
                self.pages.flash(request, text)
                return RedirectResponse(f"{BASE}#{part}", status_code=303)

            return await run_in_threadpool(run)

        return self.pages._post(handler)

    @staticmethod
    def preferences(conn, context: Context, form: FormData) -> str:
        for task in AI_TASKS:
            settings.set_task(conn, context.company_id, task, enabled=form.get(f"enabled_{task}") == "on",
                              mode=_text(form, f"mode_{task}") or None)
        scope = _text(form, "scope")
        if scope not in ("all", "chosen"):
            raise ValidationError("choose every accounting integration or the ones ticked")
        ids = None
        if scope == "chosen":
            own = {i["id"] for i in ai_view.accounting_integrations(conn, context.company_id)}
            ids = [_id(v, "an integration id") for v in form.getlist("integration")]
            if any(i not in own for i in ids):
                raise NotFoundError("No such integration.")
            if not ids:
                raise ValidationError("tick at least one integration, or choose every accounting integration "
                                      "(to stop the assist, turn its tasks off)")
        settings.set_company(conn, context.company_id, integration_ids=ids)
        return "Processing preferences saved."

    @staticmethod
    def thresholds(conn, context: Context, form: FormData) -> str:
        for task in AI_TASKS:
            label = ai_view.TASK_LABELS[task].lower()
            low, high = _text(form, f"low_{task}"), _text(form, f"high_{task}")
            if not low or not high:
                raise ValidationError(f"both thresholds of {label} are needed (numbers between 0 and 1)")
            try:
                settings.set_task(conn, context.company_id, task, low=low, high=high)
            except ValidationError as exc:
                raise ValidationError(f"{ai_view.TASK_LABELS[task]}: {exc}") from None
        return "Confidence thresholds saved."

    @staticmethod
    def price(conn, context: Context, form: FormData) -> str:
        raw = _text(form, "price_per_cpu_hour")
        if not raw:
            raise ValidationError("the price per CPU hour is needed (a number, 0 or more)")
        done = settings.set_company(conn, context.company_id, price_per_cpu_hour=raw)
        return f"Price saved: {done.price_per_cpu_hour:g} per CPU hour."

    @staticmethod
    def external(conn, context: Context, form: FormData) -> str:
        done = external_settings.save(
            conn, Keyring.from_env(), context.company_id, enabled=form.get("enabled") == "on",
            base_url=_text(form, "base_url", external_settings.MAX_URL + 1), model=_text(form, "model", 120),
            price_input_per_1k=_text(form, "price_input_per_1k"), price_output_per_1k=_text(form, "price_output_per_1k"),
            monthly_budget=_text(form, "monthly_budget"), api_key=_text(form, "api_key", external_settings.MAX_KEY + 1))
        if not done.enabled:
            return "External model saved: off."
        return f"External model saved: on, {done.model} at {done.host}, budget {done.monthly_budget:.2f} a month."

    @staticmethod
    def external_test(conn, context: Context, form: FormData) -> str:
        """The saved settings: the API is asked for the model (GET /models/{model}, no tokens spent)."""
        stored = external_settings.read(conn, context.company_id)
        return external_model.check_connection(stored, external_settings.api_key(conn, Keyring.from_env(), context.company_id))

    @staticmethod
    def verdicts(conn, context: Context, form: FormData) -> str:
        """One row's button (`one` = "verdict:id"; a correction reads `account_<id>`) or the
        bulk button (`bulk` = verdict, the ticked `suggestion` ids)."""
        user = context.user.id
        one = _text(form, "one")
        if one:
            verdict, _, raw = one.partition(":")
            suggestion_id = _id(raw, "a suggestion id")
            if verdict not in VERDICT_WORDS:
                raise ValidationError(f"'{verdict[:20]}' is not a verdict (accept, reject or correct)")
            right = None
            if verdict == "correct":
                right = _text(form, f"account_{suggestion_id}")
                if not right:
                    raise ValidationError("pick the right account before correcting")
            feedback.give(conn, context.company_id, suggestion_id, verdict, correct_value=right, user_id=user)
            return f"Suggestion {VERDICT_WORDS[verdict]}."
        verdict = _text(form, "bulk")
        if verdict not in ("accept", "reject"):
            raise ValidationError("choose Accept or Reject for the ticked suggestions")
        ids = form.getlist("suggestion")
        if not ids:
            raise ValidationError("tick the suggestions first")
        if len(ids) > MAX_BULK:
            raise ValidationError(f"at most {MAX_BULK} suggestions at a time")
        n = feedback.give_many(conn, context.company_id, [_id(i, "a suggestion id") for i in ids], verdict, user_id=user)
        return f"{n} suggestion{'s' if n != 1 else ''} {VERDICT_WORDS[verdict]}."

    def routes(self) -> list:
        return [
            Route(BASE, self.pages.signed_in_page(self.page), methods=["GET"]),
            Route(BASE + "/preferences", self._action("preferences", self.preferences), methods=["POST"]),
            Route(BASE + "/thresholds", self._action("thresholds", self.thresholds), methods=["POST"]),
            Route(BASE + "/feedback", self._action("feedback", self.verdicts), methods=["POST"]),
            Route(BASE + "/price", self._action("cost", self.price), methods=["POST"]),
            Route(BASE + "/external", self._action("external", self.external), methods=["POST"]),
            Route(BASE + "/external/test", self._action("external", self.external_test, "Connection failed"), methods=["POST"]),
        ]


def routes(pages: "SettingsPages") -> list:
    """Listed by SettingsPages.routes() before the catch-all `/settings/integrations/{provider}`."""
    return AIPage(pages).routes()
