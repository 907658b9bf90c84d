"""Vendors (and customers, see the end of this docstring) both ways: which fields are synced,
how a vendor is recognised on the other side (`normalize_name` and `Matcher`), the pull page
writer of `quickbooks/vendors` and `xero/vendors` (and `<provider>/customers`), and
`apply_remote`, the one place a remote vendor state is merged into a local row (used by the
pull and by export, hub/sync/export_vendors.py).

Pull, per page (one transaction, the engine's), set-based where the policy allows:
- a remote vendor already linked to a row that is not locally dirty (its synced fields equal
  `synced_values`, no open conflict) is written with the new ones in one bulk upsert, as
  are new remote vendors nobody adopts;
- a dirty row goes through the three-way merge (hub/sync/merge.py) one by one;
- a new remote vendor first adopts an unlinked local vendor (integration NULL) of the same
  company: same tax id, else same email, else same `normalize_name(display_name)`; the merge
  then has no base (first contact);
- a retired (QuickBooks `Active: false`) or archived (Xero) vendor comes in inactive; one
  deleted at the provider (QuickBooks CDC `status: Deleted`) is marked inactive, its merge
  base too (hub/sync/pages.py `mark_deleted`), so export does not send the change back.
`synced_values` becomes the remote's values; local-only changes stay pending for export.

Which fields a provider syncs is its spec's (`accounting.vendor_fields`); fields it does not
sync may be filled from it once, when a vendor is first met (`accounting.first_contact_fields`:
Xero has one `Name` where QuickBooks has DisplayName and CompanyName, so for Xero
`legal_name` is not synced but taken from Name when a vendor is first imported).
A linked row without `synced_values` (imported before two-way sync) counts as clean.

Customers (receivables: whom the company invoices) are the same kind of record as vendors and
go through the same code: a stream's `table` and `entity_type` say which (`PARTIES`), and
`synced_fields(provider, entity)` which fields. They never match or adopt each other's rows.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import datetime, timezone
from functools import cache
from typing import Any, Iterable, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.providers import registry
from hub.schema import customer, vendor
from hub.sync import write_ledger
from hub.sync.merge import (
    Merged,
    close_converged,
    merge,
    record_conflicts,
    same,
    with_open_conflicts,
)
from hub.sync.pages import mark_deleted, split_page
from hub.sync.stream_spec import PageCounts, ReadScope, StreamSpec

# the vendor fields two-way sync knows; a provider syncs these or a subset (its spec's accounting.vendor_fields)
FIELDS = ("display_name", "legal_name", "email", "phone", "tax_id", "address", "is_active")
ENTITY = "vendor"
PARTIES = {"vendor": vendor, "customer": customer}  # entity_type -> its table

_LEGAL_SUFFIXES = {"inc", "incorporated", "llc", "ltd", "limited", "co", "corp", "corporation", "company", "plc", "lp",
                   "llp", "pllc", "pc", "gmbh", "ag", "sa", "sarl", "bv", "nv", "pty", "srl", "oy", "ab", "as", "kg"}


def synced_fields(provider: str, entity: str = ENTITY) -> tuple[str, ...]:
    """The fields of a vendor (or customer) the provider syncs both ways (its spec's
    `accounting.vendor_fields` / `accounting.customer_fields`)."""
    accounting = registry.get(provider).accounting
    return accounting.vendor_fields if entity == ENTITY else accounting.customer_fields


def normalize_name(name: str | None) -> str:
    """A vendor name as compared across systems: casefolded, accents and punctuation gone,
    whitespace collapsed, trailing legal suffixes (Inc, LLC, Ltd, ...) dropped.
    "ACME, Inc." and "Acme  Inc" and "acme" are the same vendor; "L.L.C." is "llc"."""
    text = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode().casefold()
    text = re.sub(r"(?<=\b\w)\.(?=\w\b)|(?<=\b\w)\.$", "", text)  # initialisms: l.l.c. -> llc
    words = re.sub(r"[^\w\s]|_", " ", text).split()
    while len(words) > 1 and words[-1] in _LEGAL_SUFFIXES:
        words.pop()
    return " ".join(words)


def name_key(name: str | None) -> str | None:
    """A display name as the ledger's own uniqueness rule sees it: QuickBooks refuses a second
    DisplayName that equals one in use ignoring case and surrounding spaces (6240), Xero a
    second contact Name the same way. Narrower than `normalize_name`, which also drops accents,
    punctuation and legal suffixes: "Acme Supply Co" and "Acme Supply Inc" can both exist
    in a ledger, they only *look* like one vendor to the hub's matching."""
    key = (name or "").strip().lower()
    return key or None


def search_word(name: str | None) -> str | None:
    """The word to ask the provider for name candidates with (QuickBooks `DisplayName LIKE`,
    Xero `Name.Contains`): the longest word of the name as written, accents kept, because
    the provider compares its stored text, so the ASCII-folded `normalize_name` form
    ("muller") never finds "Müller Bau". Legal suffixes are skipped when another word exists
    (a search for "Incorporated" returns half the ledger). `Matcher` then compares the
    normalised forms of what comes back. Letters and digits only: no LIKE wildcard (`_`,
    `%`) or quote reaches the query from here."""
    words = re.findall(r"[^\W_]+", name or "")
    plain = [w for w in words if w.casefold() not in _LEGAL_SUFFIXES] or words
    return max(plain, key=len) if plain else None


def tax_key(value: str | None) -> str | None:
    key = re.sub(r"[^0-9a-z]", "", (value or "").casefold())
    return key or None


def email_key(value: str | None) -> str | None:
    key = (value or "").strip().casefold()
    return key or None


def values_of(row: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    return {f: row[f] for f in fields}


def is_dirty(row: Mapping[str, Any], fields: Iterable[str]) -> bool:
    """Local changes not yet exported: a synced field differs from the merge base."""
    base = row["synced_values"]
    return base is not None and any(not same(row[f], base.get(f)) for f in fields)


class Matcher:
    """Recognises a remote vendor among local candidates: tax id, then email, then
    normalised name, each candidate taken at most once."""

    def __init__(self, candidates: Iterable[Mapping[str, Any]]):
        self.taken: set[int] = set()
        self.by: dict[str, dict[str, list[int]]] = {"tax": {}, "email": {}, "name": {}}
        for c in candidates:
            for kind, key in self.keys(c).items():
                if key:
                    self.by[kind].setdefault(key, []).append(c["id"])

    @staticmethod
    def keys(values: Mapping[str, Any]) -> dict[str, str | None]:
        return {"tax": tax_key(values.get("tax_id")), "email": email_key(values.get("email")),
                "name": normalize_name(values.get("display_name")) or None}

    def take(self, values: Mapping[str, Any]) -> int | None:
        for kind, key in self.keys(values).items():
            for candidate in self.by[kind].get(key, []) if key else ():
                if candidate not in self.taken:
                    self.taken.add(candidate)
                    return candidate
        return None


# ---- one remote state into one local row ------------------------------------------------------
def apply_remote(
    conn: Connection,
    row: Mapping[str, Any],
    remote: Mapping[str, Any],
    *,
    integration_id: int,
    provider: str,
    remote_id: str,
    remote_version: str | None,
    policy: str,
    first_contact: bool,
    entity: str = ENTITY,
) -> Merged:
    """Merge `remote` (synced fields of the remote vendor) into local `row` (locked by the
    caller) and write everything that follows: the row's values, merge base and provenance,
    its conflicts (opened or converged), external_ref, and a pending create of the vendor (its
    answer was lost; this is what it made) as succeeded. `first_contact` = no base. `entity`:
    vendor or customer (`PARTIES`)."""
    fields, table = synced_fields(provider, entity), PARTIES[entity]
    local = values_of(row, fields)
    base = None if first_contact else (row["synced_values"] or local)
    merged = merge(base, local, {f: remote.get(f) for f in fields}, policy)
    values = {f: merged.values[f] for f in merged.changed}
    if first_contact:  # fields the provider does not sync are filled once, where the row has none
        for name in registry.get(provider).accounting.first_contact_fields:
            if not row[name]:
                values[name] = remote.get(name)
    conn.execute(
        sa.update(table).where(table.c.id == row["id"]).values(
            **values, synced_values=merged.base, integration_id=integration_id, remote_id=remote_id,
            remote_version=remote_version, synced_at=sa.func.now(),
            **({"updated_at": sa.func.now()} if values else {}),
        )
    )
    record_conflicts(conn, company_id=row["company_id"], integration_id=integration_id, entity_type=entity,
                     local_id=row["id"], remote_id=remote_id, conflicts=merged.conflicts)
    close_converged(conn, integration_id, entity, row["id"], merged.agreed)
    write_ledger.link(conn, integration_id, entity, [(row["id"], remote_id, remote_version)])
    lost = write_ledger.pending(conn, integration_id, entity, row["id"], "create") if first_contact else None
    if lost is not None:  # an earlier create whose answer was lost: the vendor it made is found
        write_ledger.succeed(conn, lost, remote_id, remote_version)
    return merged


# ---- the pull page writer ---------------------------------------------------------------------
def upsert_party_page(conn: Connection, stream: StreamSpec, scope: ReadScope, records: list[dict[str, Any]]) -> PageCounts:
    """Write one page of remote vendors (or customers: the stream's table); see the module docstring."""

    entity, table = stream.entity_type, stream.table
    iid, company_id, fields = scope.integration_id, scope.company_id, synced_fields(stream.provider, entity)
    live, gone = split_page(stream, records)
    counts = PageCounts(deleted=mark_deleted(conn, stream, scope, gone))
    if not live:
        return counts

    remote = {rid: (stream.to_row(r), stream.remote_version(r)) for rid, r in live.items()}
    existing = {r["remote_id"]: r for r in conn.execute(
        sa.select(table).where(table.c.integration_id == iid, table.c.remote_id.in_(list(remote))).with_for_update()
    ).mappings()}
    conflicted = with_open_conflicts(conn, iid, entity, [r["id"] for r in existing.values()])
    merge_one: list[tuple[Mapping[str, Any], str, bool]] = []  # (local row, remote id, first contact)
    bulk: list[str] = []
    for rid, row in existing.items():
        if row["id"] in conflicted or is_dirty(row, fields):
            merge_one.append((row, rid, False))
        else:
            bulk.append(rid)
    new = [rid for rid in remote if rid not in existing]
    if new:
        adopted = _adopt(conn, table, company_id, {rid: remote[rid][0] for rid in new})
        for rid, row in adopted.items():
            merge_one.append((row, rid, True))
        bulk += [rid for rid in new if rid not in adopted]

    if bulk:
        created = _bulk_upsert(conn, stream.provider, entity, iid, company_id, {rid: remote[rid] for rid in bulk})
        counts.created += created
        counts.updated += len(bulk) - created
    for row, rid, first in merge_one:
        values, version = remote[rid]
        merged = apply_remote(conn, row, values, integration_id=iid, provider=stream.provider, remote_id=rid,
                              remote_version=version, policy=scope.conflict_policy, first_contact=first, entity=entity)
        counts.updated += 1
        counts.conflicts += len(merged.conflicts)
    return counts


def _adopt(conn: Connection, table: sa.Table, company_id: int, remote: dict[str, dict[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """New remote vendors that match an unlinked local vendor (customers: customer): remote id
    -> local row (locked)."""
    candidates = conn.execute(
        sa.select(table).where(table.c.company_id == company_id, table.c.integration_id.is_(None)).with_for_update()
    ).mappings().all()
    if not candidates:
        return {}
    matcher, by_id = Matcher(candidates), {c["id"]: c for c in candidates}
    found = {}
    for rid, values in remote.items():
        local_id = matcher.take(values)
        if local_id is not None:
            found[rid] = by_id[local_id]
    return found


def _bulk_upsert(conn: Connection, provider: str, entity: str, integration_id: int, company_id: int,
                 remote: dict[str, tuple[dict[str, Any], str | None]]) -> int:
    """Insert new vendors and overwrite clean linked ones in one statement; returns how many
    were created. Fields not synced for the provider are written on insert only."""
    fields, now, table = synced_fields(provider, entity), datetime.now(timezone.utc), PARTIES[entity]
    if all(set(values) == _FIELD_SET for values, _ in remote.values()):
        # one fixed statement whatever the page size: the page travels as one JSON parameter
        # (compiling a VALUES list of ~19,000 bind parameters per page cost more than running it)
        rows = [{**values, "remote_id": rid, "remote_version": version, "synced_values": values_of(values, fields)}
                for rid, (values, version) in remote.items()]
        inserted = conn.execute(_bulk_statement(provider, entity), {
            "rows": json.dumps(rows), "company_id": company_id, "integration_id": integration_id, "synced_at": now}).all()
        write_ledger.link(conn, integration_id, entity, inserted)
        return sum(1 for r in inserted if r[3])
    rows = [{**values, "company_id": company_id, "integration_id": integration_id, "remote_id": rid,
             "remote_version": version, "synced_at": now, "synced_values": values_of(values, fields), "sync_error": None}
            for rid, (values, version) in remote.items()]
    statement = insert(table).values(rows)
    keep = [c for c in rows[0] if c not in ("company_id", "integration_id", "remote_id") and (c not in FIELDS or c in fields)]
    set_ = {c: statement.excluded[c] for c in keep} | {"updated_at": sa.func.now()}
    inserted = conn.execute(
        statement.on_conflict_do_update(index_elements=["integration_id", "remote_id"], set_=set_)
        .returning(table.c.id, table.c.remote_id, table.c.remote_version, sa.literal_column("xmax = 0"))
    ).all()
    write_ledger.link(conn, integration_id, entity, [(r[0], r[1], r[2]) for r in inserted])
    return sum(1 for r in inserted if r[3])



_FIELD_SET = frozenset(FIELDS)
_FIELD_TYPES = {"display_name": "text", "legal_name": "text", "email": "text", "phone": "text", "tax_id": "text",
                "address": "jsonb", "is_active": "boolean"}


@cache
def _bulk_statement(provider: str, entity: str = ENTITY) -> sa.TextClause:
    """`_bulk_upsert`'s statement for a provider: the same columns and ON CONFLICT set as the
    VALUES form (fields not synced for the provider are written on insert only)."""
    fields = synced_fields(provider, entity)
    keep = ["remote_version", "synced_at", "synced_values", "sync_error", *fields]
    record = ", ".join(f"{f} {_FIELD_TYPES[f]}" for f in FIELDS)
    return sa.text(f"""
        INSERT INTO {PARTIES[entity].name} AS t (company_id, integration_id, remote_id, remote_version, synced_at, synced_values, sync_error,
                                 {", ".join(FIELDS)})
        SELECT :company_id, :integration_id, r.remote_id, r.remote_version, :synced_at, r.synced_values, NULL,
               {", ".join(f"r.{f}" for f in FIELDS)}
        FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(remote_id text, remote_version text, synced_values jsonb, {record})
        ON CONFLICT (integration_id, remote_id) DO UPDATE SET
            {", ".join(f"{c} = excluded.{c}" for c in keep)}, updated_at = now()
        RETURNING t.id, t.remote_id, t.remote_version, (t.xmax = 0)
    """)
