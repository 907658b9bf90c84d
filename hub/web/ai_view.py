"""What /settings/integrations/ai shows (hub/web/ai_page.py), read from the AI assist's own
tables through its API (hub/ai): the company's settings, what each task's thresholds mean on
its newest held-out evaluation (line coding's model, and the measures of account mapping and
vendor matching: hub/ai/training.py), the open suggestions with the accounts a person may
correct them to, accuracy over time (people's verdicts per week, and each model version's
held-out accuracy), the external model's settings (never its key) and the metered cost: CPU
time per task and month, and the external model's calls, tokens and cost per month against
its budget. Every query takes the company: an integration,
suggestion, vendor or account of another company is never read.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from hub.ai import data, external_budget, external_settings, feedback, settings, storage, usage
from hub.ai.settings import accounting_providers, at_threshold
from hub.schema import AI_TASKS, ai_feedback, gl_account, integration, vendor

TASK_LABELS = {"line_coding": "Line coding", "account_mapping": "Account mapping", "vendor_match": "Vendor matching"}
TASK_HELP = {"line_coding": "which ledger account each bill line goes to",
             "account_mapping": "which account a hub category maps to",
             "vendor_match": "whether a hub vendor is one the ledger already has"}
TASK_UNITS = {"line_coding": "lines", "account_mapping": "categories", "vendor_match": "vendors"}  # what an evaluation counts
MODE_LABELS = {"auto": "Auto-apply at the high threshold", "suggest": "Suggest only"}
WEEKS_SHOWN = 12
ACCOUNT_TASKS = ("line_coding", "account_mapping")  # suggestions answered with an account (a correction picks one)


pct = settings.percent  # the page's name for it (templates call `pct`)


def accounting_integrations(conn: Connection, company_id: int) -> list[dict]:
    """The company's QuickBooks and Xero integrations: the ones the assist can work on."""
    rows = conn.execute(sa.select(integration.c.id, integration.c.name, integration.c.provider, integration.c.is_active)
                        .where(integration.c.company_id == company_id, integration.c.provider.in_(accounting_providers()))
                        .order_by(integration.c.name, integration.c.id)).mappings()
    return [dict(r) for r in rows]


def meaning(table: list[dict], threshold: float, unit: str = "lines") -> dict[str, Any] | None:
    """What `threshold` means on a held-out threshold table: its own row, or the nearest
    measured threshold at or below it (precision there is a floor, coverage a ceiling).
    `unit`: what the evaluation counts (lines, categories, vendors)."""
    rows = [r for r in table if r.get("count")]
    if not rows:
        return None
    below = [r for r in rows if r["threshold"] <= threshold + 1e-9]
    row = max(below, key=lambda r: r["threshold"]) if below else min(rows, key=lambda r: r["threshold"])
    exact = abs(row["threshold"] - threshold) < 1e-9
    text = (f"at {threshold:.2f}" + ("" if exact else f" (measured at {row['threshold']:.2f})")
            + f": {pct(row['precision'])} correct, covers {pct(row['coverage'])} of {unit}")
    return {"threshold": threshold, "measured": row["threshold"], "precision": row["precision"], "coverage": row["coverage"],
            "exact": exact, "text": text}


def _measured_on(task: str, version: dict) -> str:
    """What an evaluation was measured on, in a sentence's words."""
    e = version["evaluation"]
    if task == "line_coding":
        return (f"model version {version['version']}, trained on {version['training_size']} lines, measured on "
                f"{e.get('test_size')} it had not seen (top answer right for {pct(e.get('top1'))})")
    if task == "account_mapping":
        return (f"measured on {e.get('test_size')} categories whose account a person chose, read by line-coding model "
                f"version {e.get('line_coding_version')} (top answer right for {pct(e.get('top1'))})")
    return (f"measured on {e.get('test_size')} vendors people decided a match about, against {version['training_size']} "
            f"ledger vendors (best match right for {pct(e.get('top1'))})")


NOT_MEASURED = {
    "line_coding": "No model with a held-out evaluation yet: the nightly training makes one from at least "
                   f"{data.EVALUATION_MIN['line_coding']} coded bill lines.",
    "account_mapping": "No evaluation yet: the nightly training measures the mapping suggestions once "
                       f"{data.EVALUATION_MIN['account_mapping']} categories have an account a person chose (read by a line-coding model).",
    "vendor_match": "No evaluation yet: the nightly training measures vendor matching once people decided about "
                    f"{data.EVALUATION_MIN['vendor_match']} vendors' matches.",
}


def evaluation(conn: Connection, item: dict, task: settings.TaskSetting) -> dict:
    """One integration's newest held-out evaluation of one task: the chart's points, the
    table, what the task's two thresholds mean on it, and every version (accuracy over time)."""
    unit = TASK_UNITS[task.task]
    versions = storage.versions(conn, item["id"], task.task)
    newest = next((v for v in versions if (v["evaluation"] or {}).get("thresholds")), None)
    history = [{"version": v["version"], "trained_at": v["trained_at"], "training_size": v["training_size"],
                "top1": (v["evaluation"] or {}).get("top1"),
                "at_high": at_threshold((v["evaluation"] or {}).get("thresholds") or [], task.high)}
               for v in versions]
    out = {"integration": item, "task": task.task, "label": TASK_LABELS[task.task], "unit": unit, "versions": history,
           "model": None, "hint": NOT_MEASURED[task.task]}
    if newest is None:
        return out
    table = newest["evaluation"]["thresholds"]
    return {
        **out,
        "model": {"version": newest["version"], "trained_at": newest["trained_at"], "training_size": newest["training_size"],
                  "test_size": newest["evaluation"].get("test_size"), "top1": newest["evaluation"].get("top1"),
                  "measured_on": _measured_on(task.task, newest)},
        "table": [{**r, "precision_text": pct(r["precision"]), "coverage_text": pct(r["coverage"])} for r in table],
        "chart": {"kind": "thresholds", "x": [r["threshold"] for r in table],
                  "series": [{"label": "Correct (precision)", "values": [r["precision"] for r in table], "tone": "ok"},
                             {"label": f"{unit.capitalize()} covered", "values": [r["coverage"] for r in table], "tone": "busy"}]},
        "high": meaning(table, task.high, unit), "low": meaning(table, task.low, unit),
    }


def evaluations(conn: Connection, company_id: int, integrations: list[dict], current: settings.AISettings) -> list[dict]:
    """Per task (in the page's order), per accounting integration: `evaluation`."""
    return [{"task": name, "label": TASK_LABELS[name], "entries": [evaluation(conn, item, current.task(name)) for item in integrations]}
            for name in AI_TASKS]


def open_suggestions(conn: Connection, company_id: int, limit: int = 200) -> list[dict]:
    """The open suggestions as the table shows them: what was read (description or category
    or vendor name), the vendor, the answer, its probability, and for account answers the
    accounts of the same integration a correction may pick."""
    rows = feedback.open_suggestions(conn, company_id, limit=limit)
    vendor_ids = {int(r["input"]["vendor"]) for r in rows
                  if r["task"] == "line_coding" and str((r["input"] or {}).get("vendor") or "").isdigit()}
    vendors = dict(conn.execute(sa.select(vendor.c.id, vendor.c.display_name)
                                .where(vendor.c.id.in_(sorted(vendor_ids)), vendor.c.company_id == company_id)).all()) if vendor_ids else {}
    integration_ids = sorted({r["integration_id"] for r in rows if r["task"] in ACCOUNT_TASKS})
    accounts: dict[int, list[dict]] = {}
    if integration_ids:
        for a in conn.execute(sa.select(gl_account.c.id, gl_account.c.integration_id, gl_account.c.code, gl_account.c.name)
                              .where(gl_account.c.integration_id.in_(integration_ids), gl_account.c.company_id == company_id,
                                     gl_account.c.is_active).order_by(gl_account.c.name, gl_account.c.id)).mappings():
            accounts.setdefault(a["integration_id"], []).append(dict(a))
    out = []
    for r in rows:
        data = r["input"] or {}
        if r["task"] == "line_coding":
            what = data.get("description") or ""
            vendor_id = str(data.get("vendor") or "")
            who = vendors.get(int(vendor_id)) if vendor_id.isdigit() else None
        elif r["task"] == "account_mapping":
            what, who = f"Category: {data.get('category') or r['input_key']}", None
        else:
            what, who = data.get("display_name") or "", None
        out.append({"id": r["id"], "task": r["task"], "task_label": TASK_LABELS[r["task"]], "what": what, "vendor": who,
                    "answer": r["label"] or r["value"], "value": r["value"],
                    "probability": float(r["probability"] or 0), "action": r["action"], "source": r["source"],
                    "accounts": accounts.get(r["integration_id"], []) if r["task"] in ACCOUNT_TASKS else []})
    return out


def weekly_feedback(conn: Connection, company_id: int, weeks: int = WEEKS_SHOWN) -> list[dict]:
    """People's verdicts per ISO week (Monday, UTC), oldest first, the newest `weeks` weeks."""
    week = sa.cast(sa.func.date_trunc("week", sa.func.timezone("UTC", ai_feedback.c.created_at)), sa.Date).label("week")
    rows = conn.execute(sa.select(week, ai_feedback.c.verdict, sa.func.count())
                        .where(ai_feedback.c.company_id == company_id).group_by(week, ai_feedback.c.verdict)).all()
    by_week: dict = {}
    for day, verdict, n in rows:
        by_week.setdefault(day, {"accept": 0, "correct": 0, "reject": 0})[verdict] = n
    out = []
    for day in sorted(by_week)[-weeks:]:
        c = by_week[day]
        total = sum(c.values())
        out.append({"week": day.isoformat(), "accepted": c["accept"], "corrected": c["correct"], "rejected": c["reject"],
                    "total": total, "share": c["accept"] / total if total else None, "share_text": pct(c["accept"] / total if total else None)})
    return out


def feedback_chart(weeks: list[dict]) -> dict:
    return {"kind": "weeks", "x": [w["week"] for w in weeks],
            "series": [{"label": "Accepted", "values": [w["accepted"] for w in weeks], "tone": "ok"},
                       {"label": "Corrected", "values": [w["corrected"] for w in weeks], "tone": "busy"},
                       {"label": "Rejected", "values": [w["rejected"] for w in weeks], "tone": "bad"}]}


def costs(conn: Connection, company_id: int) -> list[dict]:
    return [{**r, "task_label": TASK_LABELS.get(r["task"], r["task"]), "month_text": r["month"].strftime("%B %Y")}
            for r in usage.report(conn, company_id)]


def external_months(conn: Connection, setting: external_settings.ExternalSettings) -> list[dict]:
    """The external model per month, newest first; this month's spend against the budget
    (a past month's budget is not kept: its cost only)."""
    this_month = external_budget.current_month(conn)
    out = []
    for r in external_budget.report(conn, setting.company_id):
        current = r["month"] == this_month and setting.monthly_budget > 0
        out.append({**r, "month_text": r["month"].strftime("%B %Y"), "current": current,
                    "budget": setting.monthly_budget if current else None,
                    "used_text": pct(float(r["cost"] / setting.monthly_budget)) if current else "—"})
    return out


def load(conn: Connection, company_id: int) -> dict[str, Any]:
    """Everything the page shows, read in one connection."""
    current = settings.read(conn, company_id)
    integrations = accounting_integrations(conn, company_id)
    weeks = weekly_feedback(conn, company_id)
    external = external_settings.read(conn, company_id)
    return {
        "settings": current, "tasks": [current.task(t) for t in AI_TASKS], "labels": TASK_LABELS, "help": TASK_HELP,
        "modes": MODE_LABELS, "integrations": integrations,
        "covered": set(i["id"] for i in integrations if current.covers(i["id"])),
        "evaluations": evaluations(conn, company_id, integrations, current),
        "suggestions": open_suggestions(conn, company_id),
        "weeks": weeks, "weeks_chart": feedback_chart(weeks), "costs": costs(conn, company_id),
        "external": external, "external_months": external_months(conn, external),
        "external_problem": external_budget.last_problem(conn, company_id),
    }
