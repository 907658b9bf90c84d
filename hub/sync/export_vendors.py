"""Vendor export: local vendors that are unlinked (never in this ledger) or dirty (changed
since the last sync) and have no open conflict go to QuickBooks or Xero.

Per vendor, in this order:
1. an unlinked vendor is first looked for at the provider, so nothing is created twice:
   its stored remote id (external_ref), then tax id, then email, then normalised display
   name (`normalize_name`; the provider is searched with a word of the name as written,
   `search_word`, since it cannot search by the hub's normalised form). A match is linked
   (a three-way merge without base: hub/sync/merge.py); otherwise it is created. A create
   refused as a duplicate name (QuickBooks 6240, Xero "unique Name") is looked up by name
   and linked instead of failing;
2. a linked vendor whose synced fields differ from `synced_values` sends those fields only:
   QuickBooks a sparse update with the SyncToken we last saw, Xero a POST after checking the
   contact did not change. A stale version (5010) re-reads the remote and merges it (a
   conflict if both sides changed a field), then sends what is still pending, once.

Writes follow the idempotency ledger (hub/sync/write_ledger.py); a vendor with a pending write
from an earlier run is looked up as above and otherwise resent with the same request key.
After a write, a local field that did not change meanwhile takes the provider's stored
form of the value (e.g. an address in the provider's keys), so it does not look dirty.
"""

from __future__ import annotations

from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from hub.crypto import Keyring
from hub.providers.protocols import AccountingClient
from hub.providers.errors import DuplicateRecord, RecordNotFound, RecordProblem, StaleVersion
from hub.schema import sync_conflict, vendor
from hub.sync import preferences, write_ledger
from hub.sync.export import Blocked, ExportResult, ExportRun, export_run
from hub.sync.merge import close_converged, same
from hub.sync.vendors import ENTITY, Matcher, apply_remote, is_dirty, normalize_name, search_word, synced_fields, values_of


def export_vendors(
    engine: Engine, keyring: Keyring, integration_id: int, *, run_id: str | None = None, client: AccountingClient | None = None,
    policy: str | None = None,
) -> ExportResult:
    """Export the company's new and changed vendors to the integration; see the module docstring.
    `policy` overrides the integration's conflict policy."""
    with export_run(engine, keyring, integration_id, ENTITY, run_id, client) as run:
        policy = policy or preferences.from_config(run.integration.provider, run.integration.config).conflict_policy
        ids, conflicted = _candidates(run)
        run.result.blocked += conflicted
        for vendor_id in ids:
            try:
                _export_one(run, vendor_id, policy)
            except Blocked as exc:
                run.blocked(vendor, vendor_id, exc.reason)
            except RecordProblem as exc:
                run.failed(vendor, vendor_id, exc)
    return run.result


def _candidates(run: ExportRun) -> tuple[list[int], int]:
    """(vendor ids to export, how many are held back by open conflicts). Unlinked inactive
    vendors are not created: a retired vendor has no business being new in the ledger."""
    fields = synced_fields(run.integration.provider)
    local = sa.func.jsonb_build_object(*[x for f in fields for x in (sa.literal(f), vendor.c[f])])
    open_conflict = sa.exists().where(
        sync_conflict.c.integration_id == run.integration_id, sync_conflict.c.entity_type == ENTITY,
        sync_conflict.c.local_id == vendor.c.id, sync_conflict.c.status == "open")
    wanted = sa.or_(
        sa.and_(vendor.c.integration_id.is_(None), vendor.c.is_active),
        sa.and_(vendor.c.integration_id == run.integration_id, vendor.c.synced_values.is_not(None), local != vendor.c.synced_values),
    )
    with run.engine.connect() as conn:
        rows = conn.execute(
            sa.select(vendor.c.id, open_conflict.label("conflicted"))
            .where(vendor.c.company_id == run.integration.company_id, wanted).order_by(vendor.c.id)
        ).all()
    return [r.id for r in rows if not r.conflicted], sum(1 for r in rows if r.conflicted)


def _load(conn: Connection, vendor_id: int, lock: bool = False) -> Mapping[str, Any]:
    query = sa.select(vendor).where(vendor.c.id == vendor_id)
    return conn.execute(query.with_for_update() if lock else query).mappings().one()


def _export_one(run: ExportRun, vendor_id: int, policy: str) -> None:
    iid = run.integration_id
    with run.engine.connect() as conn:
        row = _load(conn, vendor_id)
        pending = write_ledger.pending(conn, iid, ENTITY, vendor_id)
        stored_id = write_ledger.remote_id_of(conn, iid, ENTITY, vendor_id)
    just_linked = False
    if row["integration_id"] is None:
        record = _stored(run, stored_id) or _match(run, row)
        if record is None:
            _create(run, row, pending if pending and pending.operation == "create" else None, policy)
            return
        if not _link(run, row, record, policy):
            return  # conflicts: held back until resolved
        just_linked, pending = True, None
        with run.engine.connect() as conn:
            row = _load(conn, vendor_id)
    if not is_dirty(row, synced_fields(run.integration.provider)):
        if not just_linked:
            run.result.skipped += 1
        return
    _update(run, row, pending if pending and pending.operation == "update" else None, policy, count=not just_linked)


# ---- matching ----------------------------------------------------------------------------------
def _stored(run: ExportRun, remote_id: str | None) -> dict[str, Any] | None:
    """The remote vendor external_ref names for this local one, if it still exists."""
    if remote_id is None:
        return None
    try:
        return run.side.read_vendor(remote_id)
    except RecordNotFound:
        return None


def _match(run: ExportRun, row: Mapping[str, Any], kinds: tuple[str, ...] = ("tax", "email", "name")) -> dict[str, Any] | None:
    """The remote vendor this local one already is, if any: tax id, then email, then
    normalised name. The provider is asked for candidates (by name: the longest word of the
    display name as written, `search_word`), `Matcher` decides on the normalised forms."""
    side, want = run.side, Matcher.keys(row)
    for kind in kinds:
        query = {"tax": row["tax_id"], "email": row["email"], "name": search_word(row["display_name"])}[kind]
        if not want[kind] or not query:
            continue
        hits = [h for h in side.find_vendors(kind, query.strip()) if Matcher.keys(side.vendor_values(h))[kind] == want[kind]]
        if hits:  # several (e.g. one tax id on two vendors): the one with the same name, active first
            hits.sort(key=lambda h: (normalize_name(side.vendor_values(h)["display_name"]) != want["name"],
                                     not side.vendor_values(h)["is_active"]))
            return hits[0]
    return None


def _link(run: ExportRun, row: Mapping[str, Any], record: dict[str, Any], policy: str) -> bool:
    """Adopt an existing remote vendor for an unlinked local one (merge without base; a
    pending create of it is settled there); False when that left conflicts."""
    remote_id, version = run.side.vendor_key(record)
    with run.engine.begin() as conn:
        holder = conn.scalar(sa.select(vendor.c.id).where(
            vendor.c.integration_id == run.integration_id, vendor.c.remote_id == remote_id, vendor.c.id != row["id"]))
        if holder is not None:
            raise Blocked(f"{run.side.label} vendor '{record.get('DisplayName') or record.get('Name')}' is already linked to local "
                          f"vendor {holder}; merge the two local vendors first")
        merged = apply_remote(conn, _load(conn, row["id"], lock=True), run.side.vendor_values(record),
                              integration_id=run.integration_id, provider=run.integration.provider, remote_id=remote_id,
                              remote_version=version, policy=policy, first_contact=True)
        conn.execute(sa.update(vendor).where(vendor.c.id == row["id"]).values(sync_error=None))
        run.sync.page(conn, processed=1)
    run.result.linked += 1
    run.result.conflicts += len(merged.conflicts)
    if merged.conflicts:
        run.result.blocked += 1
    return not merged.conflicts


# ---- writes ------------------------------------------------------------------------------------
def _create(run: ExportRun, row: Mapping[str, Any], pending: write_ledger.Write | None, policy: str) -> None:
    sent = values_of(row, synced_fields(run.integration.provider))
    payload = run.side.vendor_payload(sent)
    try:
        run.write(entity_type=ENTITY, local_id=row["id"], operation="create", payload=payload, pending=pending,
                  send=lambda key, resumed: run.side.create_vendor(payload, key),
                  on_success=lambda conn, record, old: _written(run, conn, row["id"], sent, record, adopt=not old))
    except DuplicateRecord:
        record = _match(run, row, ("name",))
        if record is None:
            raise
        _link(run, row, record, policy)
        return
    run.result.created += 1


def _update(run: ExportRun, row: Mapping[str, Any], pending: write_ledger.Write | None, policy: str, *, count: bool = True,
            retry: bool = True) -> None:
    base = row["synced_values"]
    sent = {f: row[f] for f in synced_fields(run.integration.provider) if not same(row[f], base.get(f))}
    payload = run.side.vendor_payload(sent)
    try:
        run.write(entity_type=ENTITY, local_id=row["id"], operation="update", payload=payload, pending=pending,
                  send=lambda key, resumed: run.side.update_vendor(row["remote_id"], row["remote_version"], payload, key, resumed),
                  on_success=lambda conn, record, old: _written(run, conn, row["id"], sent, record, adopt=not old),
                  processed=int(count))
    except StaleVersion:
        if not retry:
            raise
        if not _refresh(run, row, policy):
            return
        with run.engine.connect() as conn:
            row = _load(conn, row["id"])
        if is_dirty(row, synced_fields(run.integration.provider)):
            _update(run, row, None, policy, count=count, retry=False)
        return
    run.result.updated += 1


def _refresh(run: ExportRun, row: Mapping[str, Any], policy: str) -> bool:
    """The remote changed since our last sync: read it and merge it in (as a pull would);
    False when that left conflicts."""
    record = run.side.read_vendor(row["remote_id"])
    remote_id, version = run.side.vendor_key(record)
    with run.engine.begin() as conn:
        merged = apply_remote(conn, _load(conn, row["id"], lock=True), run.side.vendor_values(record),
                              integration_id=run.integration_id, provider=run.integration.provider, remote_id=remote_id,
                              remote_version=version, policy=policy, first_contact=False)
    run.result.conflicts += len(merged.conflicts)
    if merged.conflicts:
        run.result.blocked += 1
    return not merged.conflicts


def _written(run: ExportRun, conn: Connection, vendor_id: int, sent: dict[str, Any], record: dict[str, Any], *,
             adopt: bool) -> tuple[str, str | None]:
    """The provider stored the vendor: provenance, merge base and external_ref, in the
    ledger's success transaction. `adopt`: the answer is about what we sent this time (not
    a replay of an older payload), so unchanged local fields take the provider's form."""
    fields = synced_fields(run.integration.provider)
    remote_id, version = run.side.vendor_key(record)
    remote = run.side.vendor_values(record)
    local = _load(conn, vendor_id, lock=True)
    values = {f: remote[f] for f in sent if adopt and local[f] == sent[f] and local[f] != remote[f]}
    conn.execute(sa.update(vendor).where(vendor.c.id == vendor_id).values(
        **values, synced_values=values_of(remote, fields), integration_id=run.integration_id, remote_id=remote_id,
        remote_version=version, synced_at=sa.func.now(), sync_error=None,
    ))
    close_converged(conn, run.integration_id, ENTITY, vendor_id, [f for f in fields if same({**local, **values}[f], remote[f])])
    write_ledger.link(conn, run.integration_id, ENTITY, [(vendor_id, remote_id, version)])
    return remote_id, version
