"""Vendor export: local vendors that are unlinked (never in this ledger) or dirty (changed
since the last sync) and have no open conflict go to QuickBooks or Xero.

Per vendor, in this order:
1. an unlinked vendor is first looked for at the provider, so nothing is created twice:
   its stored remote id (external_ref), then tax id, then email, then normalised display
   name (`normalize_name`; the provider is searched with a word of the name as written,
   `search_word`, since it cannot search by the hub's normalised form). A match is linked
   (a three-way merge without base: hub/sync/merge.py). Found by none of these, a vendor is
   compared with the ledger's vendors the hub knows by the AI assist's vendor matching
   (issue 14; names alike after normalisation, tax id, email: hub/ai/vendor_match.py),
   within the company's settings: at or above its high threshold (auto-apply) it is linked
   to that vendor instead of creating a duplicate (its bills move to the ledger's vendor;
   the reason gives the score), between the thresholds it is held back as a possible
   duplicate with a suggestion to accept (link) or reject (created at the next export; that
   pair is never linked automatically again) on the AI page, below the low threshold it is
   created. A create refused as a duplicate name (QuickBooks 6240, Xero "unique Name") is
   looked up by name and linked instead of failing;
2. a linked vendor whose synced fields differ from `synced_values` sends those fields only:
   QuickBooks a sparse update with the SyncToken we last saw, Xero a POST after checking the
   contact did not change. A stale version (5010) re-reads the remote and merges it (a
   conflict if both sides changed a field), then sends what is still pending, once.

Writes follow the idempotency ledger (hub/sync/write_ledger.py); a vendor with a pending write
from an earlier run is looked up as above and otherwise resent with the same request key.
After a write, a local field that did not change meanwhile takes the provider's stored
form of the value (e.g. an address in the provider's keys), so it does not look dirty.

Plan and apply (hub/sync/export.py): `_decide` makes a vendor's `Decision` reading only (the
row, the ledger, the provider's look-ups; a link's outcome is predicted with the merge
policy's `merge`), `_apply` carries it out. The export decides each vendor right before
applying it; `plan_vendors`, the export preview's, decides them and applies nothing.

Customers (receivables' parties) go out the same way (`export_customers`, `entity="customer"`):
the `customer` table, entity `customer` in the ledger and external_ref, and the provider
side's customer writer (QuickBooks `Customer`, a Xero contact; `ExportSide.party`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.ai import vendor_match
from hub.ai.settings import PAGE as AI_PAGE, percent
from hub.crypto import Keyring
from hub.errors import ValidationError
from hub.providers.protocols import AccountingClient
from hub.providers.errors import DuplicateRecord, RecordNotFound, RecordProblem, StaleVersion
from hub.schema import sync_conflict
from hub.sync import preferences, write_ledger
from hub.sync.export import Blocked, Change, Decision, ExportResult, ExportRun, ExportScope, describe, export_run
from hub.sync.merge import close_converged, merge, norm, same
from hub.sync.vendors import ENTITY, PARTIES, Matcher, apply_remote, is_dirty, normalize_name, search_word, synced_fields, values_of


@dataclass(frozen=True)
class Party:
    """What is exported: vendors or customers (hub/sync/vendors.py `PARTIES`): the entity, its
    table, and the provider side's writer of it (`ExportSide.party(entity)`)."""

    entity: str
    table: sa.Table
    side: Any

    @classmethod
    def of(cls, scope: ExportScope, entity: str) -> "Party":
        return cls(entity, PARTIES[entity], scope.side.party(entity))


def export_vendors(
    engine: Engine, keyring: Keyring, integration_id: int, *, run_id: str | None = None, client: AccountingClient | None = None,
    policy: str | None = None, entity: str = ENTITY,
) -> ExportResult:
    """Export the company's new and changed vendors (`entity="customer"`: customers) to the
    integration; see the module docstring. `policy` overrides the integration's conflict
    policy. Each vendor is decided (`_decide`, the plan the preview shows) just before it is
    applied, so it sees what the vendors before it changed."""
    with export_run(engine, keyring, integration_id, entity, run_id, client) as run:
        p = Party.of(run, entity)
        policy = policy or _policy(run)
        ids, conflicted = _candidates(p, run)
        for decision in (_conflict_hold(p, run, vendor_id, fields) for vendor_id, fields in conflicted.items()):
            _apply(p, run, decision, policy)
        for vendor_id in ids:
            try:
                _apply(p, run, _decide(p, run, vendor_id, policy), policy)
            except Blocked as exc:
                run.blocked(p.table, vendor_id, exc.reason)
            except RecordProblem as exc:
                run.failed(p.table, vendor_id, exc)
    return run.result


def export_customers(engine: Engine, keyring: Keyring, integration_id: int, **kwargs: Any) -> ExportResult:
    """Export the company's new and changed customers (receivables' parties), as vendors are."""
    return export_vendors(engine, keyring, integration_id, entity="customer", **kwargs)


def plan_vendors(scope: ExportScope, policy: str | None = None, limit: int | None = None,
                 entity: str = ENTITY) -> tuple[list[Decision], int]:
    """What `export_vendors` would do with each vendor now, by the same `_candidates` and
    `_decide`, writing nothing (hub/sync/export_preview.py): (decisions, vendors left
    undecided). `limit` caps the vendors decided (each new one costs up to three look-ups at
    the provider); those held back by conflicts are always listed. A look-up the provider
    refuses is a hold with its message (the export would count that vendor as failed)."""
    policy, p = policy or _policy(scope), Party.of(scope, entity)
    ids, conflicted = _candidates(p, scope)
    decisions = [_conflict_hold(p, scope, vendor_id, fields) for vendor_id, fields in conflicted.items()]
    left = max(0, len(ids) - limit) if limit is not None else 0
    for vendor_id in ids[:len(ids) - left]:
        try:
            decisions.append(_decide(p, scope, vendor_id, policy))
        except RecordProblem as exc:
            with scope.engine.connect() as conn:
                name = _load(p, conn, vendor_id)["display_name"]
            decisions.append(Decision(p.entity, vendor_id, name, "hold", hold="refused",
                                      reason=f"{scope.side.label} refused a look-up of it: {describe(exc)}"))
    return decisions, left


def _policy(scope: ExportScope) -> str:
    return preferences.from_config(scope.integration.provider, scope.integration.config).conflict_policy


def _candidates(p: "Party", scope: ExportScope) -> tuple[list[int], dict[int, list[str]]]:
    """(vendor ids to export, {vendor held back by open conflicts: their fields}). Unlinked
    inactive vendors are not created: a retired vendor has no business being new in the ledger."""
    fields = synced_fields(scope.integration.provider, p.entity)
    local = sa.func.jsonb_build_object(*[x for f in fields for x in (sa.literal(f), p.table.c[f])])
    wanted = sa.or_(
        sa.and_(p.table.c.integration_id.is_(None), p.table.c.is_active),
        sa.and_(p.table.c.integration_id == scope.integration_id, p.table.c.synced_values.is_not(None), local != p.table.c.synced_values),
    )
    with scope.engine.connect() as conn:
        ids = list(conn.scalars(sa.select(p.table.c.id).where(p.table.c.company_id == scope.integration.company_id, wanted)
                                .order_by(p.table.c.id)))
        conflicted: dict[int, list[str]] = {}
        for local_id, name in conn.execute(
            sa.select(sync_conflict.c.local_id, sync_conflict.c.field)
            .where(sync_conflict.c.integration_id == scope.integration_id, sync_conflict.c.entity_type == p.entity,
                   sync_conflict.c.status == "open", sync_conflict.c.local_id.in_(ids))
            .order_by(sync_conflict.c.local_id, sync_conflict.c.field)
        ):
            conflicted.setdefault(local_id, []).append(name)
    return [i for i in ids if i not in conflicted], conflicted


def _load(p: "Party", conn: Connection, vendor_id: int, lock: bool = False) -> Mapping[str, Any]:
    query = sa.select(p.table).where(p.table.c.id == vendor_id)
    return conn.execute(query.with_for_update() if lock else query).mappings().one()


# ---- the plan: one decision per vendor, nothing written -----------------------------------------
def _conflict_hold(p: "Party", scope: ExportScope, vendor_id: int, fields: list[str]) -> Decision:
    with scope.engine.connect() as conn:
        name = _load(p, conn, vendor_id)["display_name"]
    return Decision(p.entity, vendor_id, name, "hold", hold="conflict",
                    reason=f"it has open sync conflicts ({', '.join(fields)}): it changed here and in {scope.side.label}; "
                           "resolve them before it is sent")


def _decide(p: "Party", scope: ExportScope, vendor_id: int, policy: str) -> Decision:
    """What the export does with this vendor now. Reads the row, the ledger and (for an
    unlinked vendor) the provider: its stored remote id, then the matching look-ups. Pure:
    a link is predicted with the merge policy's own `merge` (hub/sync/merge.py), not done."""
    iid, fields = scope.integration_id, synced_fields(scope.integration.provider, p.entity)
    with scope.engine.connect() as conn:
        row = _load(p, conn, vendor_id)
        pending = write_ledger.pending(conn, iid, p.entity, vendor_id)
        stored_id = write_ledger.remote_id_of(conn, iid, p.entity, vendor_id)
    name = row["display_name"]
    if row["integration_id"] is None:
        record, how = _stored(p, scope, stored_id), "its stored remote id"
        if record is None:
            record, how = _match(p, scope, row)
        if record is None:
            like = _alike(p, scope, row) if pending is None else None  # a create already sent is not second-guessed
            if like is not None and like.action != "none":
                return _alike_decision(p, scope, row, like)
            return Decision(p.entity, vendor_id, name, "create", changes=[Change(f, None, row[f]) for f in fields if norm(row[f]) is not None],
                            data={"row": row, "pending": pending if pending and pending.operation == "create" else None, "alike": like})
        return _link_decision(p, scope, row, record, how, policy)
    if not is_dirty(row, fields):
        return Decision(p.entity, vendor_id, name, "skip", remote_id=row["remote_id"], data={"row": row})
    base = row["synced_values"]
    return Decision(p.entity, vendor_id, name, "update", remote_id=row["remote_id"],
                    changes=[Change(f, base.get(f), row[f]) for f in fields if not same(row[f], base.get(f))],
                    data={"row": row, "pending": pending if pending and pending.operation == "update" else None})


def _link_decision(p: "Party", scope: ExportScope, row: Mapping[str, Any], record: dict[str, Any], how: str, policy: str) -> Decision:
    """Linking `row` to the remote vendor `record`, as `_link` and the update after it would
    do: held back if another local vendor holds it; else the merge without base (conflicts
    hold the update back) and the fields still to send (old = the provider's value)."""
    side, fields = scope.side, synced_fields(scope.integration.provider, p.entity)
    remote_id, _ = p.side.key(record)
    remote = p.side.values(record)
    with scope.engine.connect() as conn:
        holder = _holder(p, conn, scope, row["id"], remote_id)
    if holder is not None:
        return Decision(p.entity, row["id"], row["display_name"], "hold", hold="duplicate", remote_id=remote_id,
                        reason=_held_by(p, scope, record, holder))
    merged = merge(None, values_of(row, fields), {f: remote.get(f) for f in fields}, policy)
    reason = f"matches {side.label} {p.entity} '{remote.get('display_name')}' by {how}"
    if merged.conflicts:
        reason += (f"; linked, then held back: both sides differ on {', '.join(c.field for c in merged.conflicts)} "
                   "(conflicts to resolve)")
        changes = []
    else:
        changes = [Change(f, remote.get(f), merged.values[f]) for f in fields if not same(merged.values[f], remote.get(f))]
    return Decision(p.entity, row["id"], row["display_name"], "link", changes=changes, reason=reason, remote_id=remote_id,
                    data={"row": row, "record": record})


def _alike(p: "Party", scope: ExportScope, row: Mapping[str, Any]) -> vendor_match.VendorMatch | None:
    """The AI assist's vendor matching of an unlinked vendor the exact look-ups did not find
    (vendors only; hub/ai/vendor_match.py `for_export`, reading only)."""
    if p.entity != "vendor":
        return None
    with scope.engine.connect() as conn:
        return vendor_match.for_export(conn, scope.integration_id, row)


def _alike_decision(p: "Party", scope: ExportScope, row: Mapping[str, Any], like: vendor_match.VendorMatch) -> Decision:
    """Link to the ledger's vendor the assist is sure of, or hold back as a possible duplicate."""
    label, score = scope.side.label, percent(like.probability)
    if like.action == "auto_applied":
        return Decision(p.entity, row["id"], row["display_name"], "link", remote_id=like.remote_id, data={"row": row, "alike": like},
                        reason=f"the AI assist matches it to {label} {p.entity} '{like.name}' ({score}: {like.reason}): linked to "
                               f"it instead of creating a duplicate, its bills go out with that {p.entity}")
    return Decision(p.entity, row["id"], row["display_name"], "hold", hold="possible_duplicate", remote_id=like.remote_id,
                    data={"row": row, "alike": like},
                    reason=f"possible duplicate of {label} {p.entity} '{like.name}' ({score}: {like.reason}); accept it on the AI "
                           f"page ({AI_PAGE}#feedback) to link it, or reject it to create it at the next export")


def _holder(p: "Party", conn: Connection, scope: ExportScope, vendor_id: int, remote_id: str) -> int | None:
    """Another local vendor already linked to this remote one, if any."""
    return conn.scalar(sa.select(p.table.c.id).where(
        p.table.c.integration_id == scope.integration_id, p.table.c.remote_id == remote_id, p.table.c.id != vendor_id))


def _held_by(p: "Party", scope: ExportScope, record: dict[str, Any], holder: int) -> str:
    return (f"{scope.side.label} {p.entity} '{record.get('DisplayName') or record.get('Name')}' is already linked to local "
            f"{p.entity} {holder}; merge the two local {p.entity}s first")


# ---- apply: carry a decision out ----------------------------------------------------------------
def _apply(p: "Party", run: ExportRun, decision: Decision, policy: str) -> None:
    data = decision.data
    like = data.get("alike")
    if decision.action == "hold":
        if decision.hold == "conflict":  # counted only: the conflicts themselves say what to do
            run.result.blocked += 1
        else:
            if like is not None:  # a possible duplicate: its suggestion waits on the AI page
                with run.engine.begin() as conn:
                    vendor_match.record(conn, run.integration_id, like, data["row"]["display_name"])
            raise Blocked(decision.reason or "held back")
    elif decision.action == "skip":
        run.result.skipped += 1
    elif decision.action == "create":
        if like is not None:  # scored, below the low threshold: metered
            with run.engine.begin() as conn:
                vendor_match.record(conn, run.integration_id, like, data["row"]["display_name"])
        _create(p, run, data["row"], data["pending"], policy)
    elif decision.action == "update":
        _update(p, run, data["row"], data["pending"], policy)
    elif decision.action == "link" and like is not None:
        _link_alike(p, run, data["row"], like)
    elif decision.action == "link":
        if not _link(p, run, data["row"], data["record"], policy):
            return  # conflicts: held back until resolved
        with run.engine.connect() as conn:
            row = _load(p, conn, decision.local_id)
        if is_dirty(row, synced_fields(run.integration.provider, p.entity)):
            _update(p, run, row, None, policy, count=False)
    else:
        raise ValueError(f"unknown export action {decision.action!r}")


def _link_alike(p: "Party", run: ExportRun, row: Mapping[str, Any], like: vendor_match.VendorMatch) -> None:
    """The AI assist's link (hub/ai/vendor_match.py `link`): the vendor's bills move to the
    ledger's vendor and it is retired, with its suggestion (auto-applied) and metering, in one
    transaction. Nothing is sent: the ledger has the vendor."""
    try:
        with run.engine.begin() as conn:
            moved = vendor_match.link(conn, run.integration.company_id, row["id"], like.remote_vendor_id)
            vendor_match.record(conn, run.integration_id, like, row["display_name"], moved=moved)
            conn.execute(sa.update(p.table).where(p.table.c.id == row["id"]).values(sync_error=None))
            run.sync.page(conn, processed=1)
    except ValidationError as exc:  # changed since it was decided
        raise Blocked(str(exc)) from None
    run.result.linked += 1


# ---- matching ----------------------------------------------------------------------------------
def _stored(p: "Party", scope: ExportScope, remote_id: str | None) -> dict[str, Any] | None:
    """The remote vendor external_ref names for this local one, if it still exists."""
    if remote_id is None:
        return None
    try:
        return p.side.read(remote_id)
    except RecordNotFound:
        return None


_MATCHED_BY = {"tax": "tax id", "email": "email", "name": "name"}


def _match(p: "Party", scope: ExportScope, row: Mapping[str, Any],
           kinds: tuple[str, ...] = ("tax", "email", "name")) -> tuple[dict[str, Any] | None, str | None]:
    """(the remote vendor this local one already is, what matched), or (None, None): tax id,
    then email, then normalised name. The provider is asked for candidates (by name: the
    longest word of the display name as written, `search_word`), `Matcher` decides on the
    normalised forms."""
    want = Matcher.keys(row)
    for kind in kinds:
        query = {"tax": row["tax_id"], "email": row["email"], "name": search_word(row["display_name"])}[kind]
        if not want[kind] or not query:
            continue
        hits = [h for h in p.side.find(kind, query.strip()) if Matcher.keys(p.side.values(h))[kind] == want[kind]]
        if hits:  # several (e.g. one tax id on two vendors): the one with the same name, active first
            hits.sort(key=lambda h: (normalize_name(p.side.values(h)["display_name"]) != want["name"],
                                     not p.side.values(h)["is_active"]))
            return hits[0], _MATCHED_BY[kind]
    return None, None


def _link(p: "Party", run: ExportRun, row: Mapping[str, Any], record: dict[str, Any], policy: str) -> bool:
    """Adopt an existing remote vendor for an unlinked local one (merge without base; a
    pending create of it is settled there); False when that left conflicts."""
    remote_id, version = p.side.key(record)
    with run.engine.begin() as conn:
        holder = _holder(p, conn, run, row["id"], remote_id)  # decided before; checked again where it is written
        if holder is not None:
            raise Blocked(_held_by(p, run, record, holder))
        merged = apply_remote(conn, _load(p, conn, row["id"], lock=True), p.side.values(record),
                              integration_id=run.integration_id, provider=run.integration.provider, remote_id=remote_id,
                              remote_version=version, policy=policy, first_contact=True, entity=p.entity)
        conn.execute(sa.update(p.table).where(p.table.c.id == row["id"]).values(sync_error=None))
        run.sync.page(conn, processed=1)
    run.result.linked += 1
    run.result.conflicts += len(merged.conflicts)
    if merged.conflicts:
        run.result.blocked += 1
    return not merged.conflicts


# ---- writes ------------------------------------------------------------------------------------
def _create(p: "Party", run: ExportRun, row: Mapping[str, Any], pending: write_ledger.Write | None, policy: str) -> None:
    sent = values_of(row, synced_fields(run.integration.provider, p.entity))
    payload = p.side.payload(sent)
    try:
        run.write(entity_type=p.entity, local_id=row["id"], operation="create", payload=payload, pending=pending,
                  send=lambda key, resumed: p.side.create(payload, key),
                  on_success=lambda conn, record, old: _written(p, run, conn, row["id"], sent, record, adopt=not old))
    except DuplicateRecord:
        record, _ = _match(p, run, row, ("name",))
        if record is None:
            raise
        _link(p, run, row, record, policy)
        return
    run.result.created += 1


def _update(p: "Party", run: ExportRun, row: Mapping[str, Any], pending: write_ledger.Write | None, policy: str, *, count: bool = True,
            retry: bool = True) -> None:
    base = row["synced_values"]
    sent = {f: row[f] for f in synced_fields(run.integration.provider, p.entity) if not same(row[f], base.get(f))}
    payload = p.side.payload(sent)
    try:
        run.write(entity_type=p.entity, local_id=row["id"], operation="update", payload=payload, pending=pending,
                  send=lambda key, resumed: p.side.update(row["remote_id"], row["remote_version"], payload, key, resumed),
                  on_success=lambda conn, record, old: _written(p, run, conn, row["id"], sent, record, adopt=not old),
                  processed=int(count))
    except StaleVersion:
        if not retry:
            raise
        if not _refresh(p, run, row, policy):
            return
        with run.engine.connect() as conn:
            row = _load(p, conn, row["id"])
        if is_dirty(row, synced_fields(run.integration.provider, p.entity)):
            _update(p, run, row, None, policy, count=count, retry=False)
        return
    run.result.updated += 1


def _refresh(p: "Party", run: ExportRun, row: Mapping[str, Any], policy: str) -> bool:
    """The remote changed since our last sync: read it and merge it in (as a pull would);
    False when that left conflicts."""
    record = p.side.read(row["remote_id"])
    remote_id, version = p.side.key(record)
    with run.engine.begin() as conn:
        merged = apply_remote(conn, _load(p, conn, row["id"], lock=True), p.side.values(record),
                              integration_id=run.integration_id, provider=run.integration.provider, remote_id=remote_id,
                              remote_version=version, policy=policy, first_contact=False, entity=p.entity)
    run.result.conflicts += len(merged.conflicts)
    if merged.conflicts:
        run.result.blocked += 1
    return not merged.conflicts


def _written(p: "Party", run: ExportRun, conn: Connection, vendor_id: int, sent: dict[str, Any], record: dict[str, Any], *,
             adopt: bool) -> tuple[str, str | None]:
    """The provider stored the vendor: provenance, merge base and external_ref, in the
    ledger's success transaction. `adopt`: the answer is about what we sent this time (not
    a replay of an older payload), so unchanged local fields take the provider's form."""
    fields = synced_fields(run.integration.provider, p.entity)
    remote_id, version = p.side.key(record)
    remote = p.side.values(record)
    local = _load(p, conn, vendor_id, lock=True)
    values = {f: remote[f] for f in sent if adopt and local[f] == sent[f] and local[f] != remote[f]}
    conn.execute(sa.update(p.table).where(p.table.c.id == vendor_id).values(
        **values, synced_values=values_of(remote, fields), integration_id=run.integration_id, remote_id=remote_id,
        remote_version=version, synced_at=sa.func.now(), sync_error=None,
    ))
    close_converged(conn, run.integration_id, p.entity, vendor_id, [f for f in fields if same({**local, **values}[f], remote[f])])
    write_ledger.link(conn, run.integration_id, p.entity, [(vendor_id, remote_id, version)])
    return remote_id, version
