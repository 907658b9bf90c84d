"""Vendor matching: is this hub vendor one the ledger already has? Asked before export creates
a vendor (so a "Acme Lumber Company" the ledger holds as "ACME Lumber Co." is linked, not
duplicated) and shown as suggestions.

In the export (hub/sync/export_vendors.py, after its exact look-ups found nothing),
`for_export` compares an unlinked hub vendor with the ledger's vendors the hub knows (the
rows imported from the integration): at or above the company's high threshold (mode auto)
the export links it (`link`), between the thresholds it holds the vendor back as a possible
duplicate with a suggestion (`record`) a person accepts (linked then) or rejects (the vendor
is created at the next export, and that pair is never linked automatically again), below
the low threshold it creates the vendor as before.

What linking means here: the hub vendor is taken as the ledger's vendor the hub already
holds. Its bills move to that vendor (so they go out with the ledger's vendor), and it is
retired (inactive, kept with its values); the suggestion remembers the bills it moved, so
a rejected automatic link is taken back (`take_back`). Why not give the hub vendor's own row
the remote id: the ledger's vendor has its row already (imported, with its bills), and a
remote vendor has one row per integration.

Evidence, strongest first: the same tax id (digits and letters only), the same email address,
then name similarity: both names normalised as the export's exact matcher does
(hub/sync/vendors.py `normalize_name`: case, accents, punctuation, trailing legal suffixes)
and compared with rapidfuzz (`token_sort_ratio`, so word order does not matter, and
`partial_ratio` for a name that is the other plus a word). A same email domain (not a
free-mail one) adds to a name match. The score is a probability-like number in [0, 1]:
tax id 0.99, email 0.97, names by similarity, a contradicting tax id lowers any match.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

import sqlalchemy as sa
from rapidfuzz import fuzz, process, utils
from sqlalchemy.engine import Connection

from hub.ai import data, settings, usage
from hub.errors import ValidationError
from hub.schema import ai_suggestion, external_ref, invoice, vendor
from hub.sync.vendors import email_key, normalize_name, tax_key

TASK = "vendor_match"
_FREE_MAIL = {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com", "proton.me", "protonmail.com"}


@dataclass(frozen=True)
class VendorMatch:
    vendor_id: int  # the hub vendor
    remote_vendor_id: int | None  # the vendor row imported from the integration (its remote id in `remote_id`)
    remote_id: str | None
    name: str | None
    probability: float
    reason: str
    action: str = "none"
    suggestion_id: int | None = None
    cpu_seconds: float = 0.0

    @property
    def input_key(self) -> str:
        return input_key(self.vendor_id)


def input_key(vendor_id: int) -> str:
    """The identity of a hub vendor for feedback (a rejected pair is (this key, the ledger vendor's row id))."""
    return f"vendor:{vendor_id}"


def _domain(email: str | None) -> str | None:
    key = email_key(email)
    if not key or "@" not in key:
        return None
    domain = key.rsplit("@", 1)[1]
    return None if domain in _FREE_MAIL else domain


def name_similarity(a: str | None, b: str | None) -> float:
    """0..1: how alike two vendor names are after normalisation."""
    x, y = normalize_name(a), normalize_name(b)
    if not x or not y:
        return 0.0
    if x == y:
        return 1.0
    sort = fuzz.token_sort_ratio(x, y, processor=utils.default_process) / 100
    partial = fuzz.token_set_ratio(x, y, processor=utils.default_process) / 100
    return max(sort, 0.95 * partial)


def score(local: Mapping[str, Any], remote: Mapping[str, Any]) -> tuple[float, str]:
    """(probability, reason) that two vendor records are the same vendor."""
    tax_l, tax_r = tax_key(local.get("tax_id")), tax_key(remote.get("tax_id"))
    if tax_l and tax_l == tax_r:
        return 0.99, "same tax id"
    mail_l, mail_r = email_key(local.get("email")), email_key(remote.get("email"))
    if mail_l and mail_l == mail_r:
        return 0.97 if not (tax_l and tax_r) else 0.6, "same email"
    similarity = name_similarity(local.get("display_name"), remote.get("display_name"))
    p = similarity ** 3  # 0.97 alike -> 0.91; 0.9 -> 0.73; 0.8 -> 0.51
    reason = f"names {round(similarity * 100)}% alike"
    domain = _domain(local.get("email"))
    if domain and domain == _domain(remote.get("email")):
        p, reason = min(0.98, p + (1 - p) * 0.5), reason + ", same email domain"
    if tax_l and tax_r:  # both have a tax id and they differ: different legal entities
        p, reason = p * 0.3, reason + ", different tax ids"
    return p, reason


def candidates(conn: Connection, integration_id: int) -> list[dict]:
    """The integration's own vendor rows (imported from the ledger)."""
    return [dict(r) for r in conn.execute(
        sa.select(vendor.c.id, vendor.c.remote_id, vendor.c.display_name, vendor.c.email, vendor.c.tax_id)
        .where(vendor.c.integration_id == integration_id, vendor.c.is_active)).mappings()]


def best_match(local: Mapping[str, Any], pool: Sequence[Mapping[str, Any]], *, shortlist: int = 10) -> VendorMatch | None:
    """The most likely remote vendor for `local` in `pool`: exact keys first, then a rapidfuzz
    shortlist of names scored in full."""
    if not pool:
        return None
    shortlisted = {i for i, c in enumerate(pool) if (tax_key(local.get("tax_id")) and tax_key(c.get("tax_id")) == tax_key(local.get("tax_id")))
                   or (email_key(local.get("email")) and email_key(c.get("email")) == email_key(local.get("email")))}
    names = [normalize_name(c.get("display_name")) for c in pool]
    for _, _, i in process.extract(normalize_name(local.get("display_name")), names, scorer=fuzz.token_sort_ratio, limit=shortlist):
        shortlisted.add(i)
    best = max(((score(local, pool[i]), i) for i in shortlisted), key=lambda t: t[0][0], default=None)
    if best is None:
        return None
    (p, reason), i = best
    c = pool[i]
    return VendorMatch(int(local["id"]), int(c["id"]), c.get("remote_id"), c.get("display_name"), p, reason)


def suggest_vendor_matches(conn: Connection, integration_id: int, vendor_ids: Sequence[int] | None = None) -> list[VendorMatch]:
    """For the company's own vendors not yet linked to this integration (or those given), the
    ledger vendor each most likely is, with an action from the settings. Auto-applied matches
    are recorded as suggestions marked auto_applied: linking is export's step (it links a
    vendor to an existing remote one instead of creating it; see hub/sync/export_vendors.py)."""
    company_id = data.company_of(conn, integration_id)
    company = settings.read(conn, company_id)
    task = company.task(TASK)
    linked = sa.select(external_ref.c.local_id).where(external_ref.c.integration_id == integration_id, external_ref.c.entity_type == "vendor")
    query = sa.select(vendor.c.id, vendor.c.display_name, vendor.c.email, vendor.c.tax_id).where(
        vendor.c.company_id == company_id, vendor.c.integration_id.is_(None), vendor.c.id.notin_(linked))
    if vendor_ids is not None:
        query = query.where(vendor.c.id.in_(list(vendor_ids)))
    locals_ = [dict(r) for r in conn.execute(query).mappings()]
    if not locals_ or not task.enabled or not company.covers(integration_id):
        return []
    pool = candidates(conn, integration_id)
    out = []
    for local in locals_:
        match = best_match(local, pool)
        if match is None:
            continue
        action = task.action(match.probability)
        match = replace(match, action=action)
        suggestion_id = None
        if action != "none":
            suggestion_id = _suggest(conn, company_id, integration_id, match, {"display_name": local["display_name"], "reason": match.reason})
        out.append(replace(match, suggestion_id=suggestion_id))
    usage.record(conn, company_id, TASK, predictions=len(locals_))
    return out


def _suggest(conn: Connection, company_id: int, integration_id: int, match: VendorMatch, details: dict[str, Any]) -> int:
    """The suggestion row of a match (hub vendor -> the ledger's vendor row), with its action."""
    return conn.scalar(ai_suggestion.insert().values(
        company_id=company_id, integration_id=integration_id, task=TASK, subject_type="vendor", subject_id=match.vendor_id,
        input_key=match.input_key, input=details, value=str(match.remote_vendor_id), label=match.name,
        probability=round(match.probability, 4), action=match.action).returning(ai_suggestion.c.id))


# ---- in the export -----------------------------------------------------------------------------
def for_export(conn: Connection, integration_id: int, local: Mapping[str, Any]) -> VendorMatch | None:
    """What vendor export does with the unlinked hub vendor `local` (a vendor row) that its
    exact look-ups did not find (see the module docstring). Reads only: the export decides
    with it and the preview shows it; what is written is the export's step (`link`, `record`).

    None when the assist does not look: the task is off, or does not cover this integration,
    or the ledger has no vendor the hub knows. Otherwise the best match, with `action`:
    auto_applied (link), suggested (hold back), none (below the low threshold: create). A
    pair people rejected is left out, so it is never linked again. `suggestion_id`: this
    pair's open suggestion from an earlier run (none is made twice; `record` makes it the
    automatic one when the thresholds moved)."""
    company_id = data.company_of(conn, integration_id)
    company = settings.read(conn, company_id)
    task = company.task(TASK)
    if not task.enabled or not company.covers(integration_id):
        return None
    started = time.process_time()
    refused = {int(value) for _, value in data.rejected(conn, integration_id, TASK, [input_key(local["id"])]) if str(value).isdigit()}
    pool = [c for c in candidates(conn, integration_id) if c["remote_id"] and c["id"] != local["id"] and c["id"] not in refused]
    match = best_match(local, pool)
    if match is None:
        return None
    action = task.action(match.probability)
    open_id = conn.scalar(sa.select(ai_suggestion.c.id).where(
        ai_suggestion.c.integration_id == integration_id, ai_suggestion.c.task == TASK, ai_suggestion.c.subject_type == "vendor",
        ai_suggestion.c.subject_id == match.vendor_id, ai_suggestion.c.value == str(match.remote_vendor_id),
        ai_suggestion.c.status == "open").order_by(ai_suggestion.c.id.desc()).limit(1)) if action != "none" else None
    return replace(match, action=action, suggestion_id=open_id, cpu_seconds=time.process_time() - started)


def record(conn: Connection, integration_id: int, match: VendorMatch, local_name: str | None,
           moved: Sequence[int] | None = None) -> int | None:
    """What the export did with a match, in its transaction: the suggestion (unless this
    pair's is open already; `moved`: the bills an automatic link moved, for `take_back`)
    and the metering of the prediction. Returns the suggestion's id."""
    company_id = data.company_of(conn, integration_id)
    suggestion_id = match.suggestion_id
    details: dict[str, Any] = {"display_name": local_name, "reason": match.reason}
    if moved is not None:
        details["moved_invoices"] = sorted(moved)
    if match.action == "auto_applied" and suggestion_id is not None:  # offered before, applied now: that suggestion says so
        conn.execute(sa.update(ai_suggestion).where(ai_suggestion.c.id == suggestion_id).values(
            action=match.action, probability=round(match.probability, 4), input=details))
    elif match.action != "none" and suggestion_id is None:
        suggestion_id = _suggest(conn, company_id, integration_id, match, details)
    usage.record(conn, company_id, TASK, predictions=1, cpu_seconds=match.cpu_seconds)
    return suggestion_id


def link(conn: Connection, company_id: int, vendor_id: int, remote_vendor_id: int) -> list[int]:
    """Take hub vendor `vendor_id` as the ledger's vendor `remote_vendor_id` (see the module
    docstring): its bills move to that vendor and it is retired. Both must be vendors of the
    company, the first not in any ledger yet, the second one the hub imported from a ledger.
    Returns the bills moved."""
    rows = {r.id: r for r in conn.execute(sa.select(vendor.c.id, vendor.c.integration_id, vendor.c.remote_id, vendor.c.is_active,
                                                    vendor.c.display_name)
                                          .where(vendor.c.id.in_([vendor_id, remote_vendor_id]), vendor.c.company_id == company_id)
                                          .order_by(vendor.c.id).with_for_update())}
    local, remote = rows.get(vendor_id), rows.get(remote_vendor_id)
    if local is None or remote is None or vendor_id == remote_vendor_id:
        raise ValidationError("the two vendors to link are not two vendors of this company")
    if local.integration_id is not None or not local.is_active:
        raise ValidationError(f"vendor '{local.display_name}' is no longer a hub vendor waiting for export: not linked")
    if remote.integration_id is None or not remote.remote_id or not remote.is_active:
        raise ValidationError(f"vendor '{remote.display_name}' is no longer an active vendor of the ledger: not linked")
    moved = list(conn.scalars(sa.update(invoice).where(invoice.c.vendor_id == vendor_id, invoice.c.company_id == company_id)
                              .values(vendor_id=remote_vendor_id, updated_at=sa.func.now()).returning(invoice.c.id)))
    conn.execute(sa.update(vendor).where(vendor.c.id == vendor_id).values(is_active=False, updated_at=sa.func.now()))
    return sorted(moved)


def take_back(conn: Connection, company_id: int, vendor_id: int, remote_vendor_id: int, moved: Sequence[int]) -> None:
    """Undo an automatic `link` people rejected: the hub vendor is active again and the bills it
    moved that still name the ledger's vendor name it again (the next export creates it,
    then sends its bills with it)."""
    if moved:
        conn.execute(sa.update(invoice).where(invoice.c.id.in_(list(moved)), invoice.c.vendor_id == remote_vendor_id,
                                              invoice.c.company_id == company_id).values(vendor_id=vendor_id, updated_at=sa.func.now()))
    conn.execute(sa.update(vendor).where(vendor.c.id == vendor_id, vendor.c.company_id == company_id, vendor.c.integration_id.is_(None))
                 .values(is_active=True, updated_at=sa.func.now()))
