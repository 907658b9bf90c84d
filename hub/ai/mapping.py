"""Account-mapping suggestions: which account of the integration's chart a hub category
(`invoice_line.category`, the categories that would block export: hub/sync/account_mapping.py
`unmapped_categories`) should map to.

From the same history as line coding, two sources:
- lines already carrying the category and an account: the category's most frequent account,
  with probability (n_top + 1) / (n + 2) (the rule of succession: two lines out of two is
  not certainty, forty out of forty nearly is);
- otherwise the category's name read as a bill line by the integration's line-coding model
  ("Lumber" reads like the lumber lines of the history), with that model's calibrated
  probability.

An auto-applied suggestion is stored as a mapping with `source = 'suggested'` and its
`confidence`, and only where the category has no mapping yet: a person's mapping is never
replaced. Accepting or correcting it makes it a person's mapping (`source = 'manual'`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.ai import data, settings, storage, usage
from hub.ai.lines import LineInput
from hub.crypto import Keyring
from hub.schema import account_mapping, ai_suggestion, gl_account
from hub.sync.account_mapping import map_to_account, unmapped_categories

TASK = "account_mapping"
MIN_LINES = 3  # below this many coded lines of a category, its name is read by the line-coding model instead


@dataclass(frozen=True)
class MappingSuggestion:
    category: str
    account_id: int | None
    account_name: str | None
    probability: float
    action: str
    source: str  # history or model
    suggestion_id: int | None = None


def suggest_account_mappings(conn: Connection, integration_id: int, categories: Sequence[str] | None = None, *,
                             keyring: Keyring | None = None) -> list[MappingSuggestion]:
    """Suggest an account for each category (default: the unmapped ones); see the module docstring."""
    company_id = data.company_of(conn, integration_id)
    company = settings.read(conn, company_id)
    task = company.task(TASK)
    wanted = list(categories) if categories is not None else [c for c, _ in unmapped_categories(conn, integration_id)]
    if not wanted or not task.enabled or not company.covers(integration_id):
        return [MappingSuggestion(c, None, None, 0.0, "none", "none") for c in wanted]
    history = data.category_accounts(conn, integration_id)
    guesses: dict[str, tuple[str | None, float, str]] = {}
    unread = []
    for category in wanted:
        counts = history.get(category)
        if counts and sum(counts.values()) >= MIN_LINES:
            account, n = counts.most_common(1)[0]
            guesses[category] = (account, (n + 1) / (sum(counts.values()) + 2), "history")
        else:
            unread.append(category)
    if unread:
        try:
            stored = storage.latest(conn, keyring or Keyring.from_env(), integration_id, "line_coding", company_id=company_id)
        except storage.ModelRefused:
            stored = None
        if stored is not None:
            for category, p in zip(unread, stored.model.predict([LineInput(c) for c in unread])):
                guesses[category] = (p.label, p.probability, "model")
    names = {str(r.id): r.name for r in conn.execute(
        sa.select(gl_account.c.id, gl_account.c.name).where(gl_account.c.integration_id == integration_id, gl_account.c.is_active))}
    mapped = set(conn.scalars(sa.select(account_mapping.c.local_category).where(account_mapping.c.integration_id == integration_id)))
    out = []
    for category in wanted:
        account, probability, source = guesses.get(category, (None, 0.0, "none"))
        if account not in names:
            out.append(MappingSuggestion(category, None, None, 0.0, "none", source))
            continue
        action = task.action(probability)
        if action == "auto_applied" and (category in mapped or not apply(conn, company_id, integration_id, category, int(account), probability)):
            action = "suggested"
        suggestion_id = None
        if action != "none":
            suggestion_id = conn.scalar(ai_suggestion.insert().values(
                company_id=company_id, integration_id=integration_id, task=TASK, subject_type="account_mapping",
                input_key=category, input={"category": category, "source": source}, value=account, label=names[account],
                probability=round(probability, 4), action=action).returning(ai_suggestion.c.id))
        out.append(MappingSuggestion(category, int(account), names[account], probability, action, source, suggestion_id))
    usage.record(conn, company_id, TASK, predictions=len(wanted))
    return out


def apply(conn: Connection, company_id: int, integration_id: int, category: str, account_id: int, confidence: float,
          source: str = "suggested") -> bool:
    """Store the mapping: a person's (`manual`) replaces any; a suggested one only fills a gap.
    Returns whether it was stored."""
    if source == "manual":
        map_to_account(conn, integration_id, category, account_id)
        return True
    done = conn.execute(insert(account_mapping).values(
        company_id=company_id, integration_id=integration_id, local_category=category, gl_account_id=account_id,
        source="suggested", confidence=round(confidence, 3)).on_conflict_do_nothing(index_elements=["integration_id", "local_category"]))
    return bool(done.rowcount)


def take_back(conn: Connection, integration_id: int, category: str, account_id: int) -> None:
    """Remove an auto-applied mapping that was rejected (a person's mapping stays)."""
    conn.execute(sa.delete(account_mapping).where(
        account_mapping.c.integration_id == integration_id, account_mapping.c.local_category == category,
        account_mapping.c.gl_account_id == account_id, account_mapping.c.source == "suggested"))
