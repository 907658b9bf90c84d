"""Field-ownership policy for records synced both ways (vendors). This docstring is the
single written statement of the policy; `merge` below is its only implementation.

Each field is merged three ways: the **base** (`synced_values`: what both sides held after
the last sync), the **local** row and the **remote** record.

| local vs base | remote vs base | result |
|---|---|---|
| same | same | nothing to do |
| same | changed | remote wins: only the ledger changed it |
| changed | same | local wins, and stays pending for export |
| changed | changed, to the same value | fine: that value |
| changed | changed differently | the conflict policy decides |

Conflict policies (the integration's `sync.conflict_policy`, hub/sync/preferences.py):
- `field_ownership` (default): the ledger owns `legal_name`, `tax_id`, `is_active` (the
  remote value wins); the hub owns `email`, `phone`, `address` (the local value wins and is
  exported); `display_name` is shared, so a two-sided change is a conflict;
- `remote_wins` / `local_wins`: that side wins every two-sided change;
- `manual`: every two-sided difference is a conflict.

A conflict keeps the local value, records (or updates) the one open `sync_conflict` row of
that field, and blocks the record's export until a person resolves it (`hub conflicts
resolve ID --keep local|remote`, hub/sync/conflicts.py): nothing is overwritten silently. The base of a
conflicting field becomes the remote value, so after "keep local" the local value differs
from the base and is exported, and after "keep remote" both sides agree.

No base (first contact: a remote vendor adopting an unlinked local one, or export linking
a local vendor to an existing remote one): a side with no value takes the other side's
value; any other difference is two-sided.

Values are compared normalised: None, "", {} and [] are "no value"; text is stripped. An
open conflict whose field now has the same value on both sides is closed as `converged`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.errors import ValidationError
from hub.schema import sync_conflict

# the conflict policies named above; the only list of them (preferences validates against it)
POLICIES = ("field_ownership", "remote_wins", "local_wins", "manual")
# who wins a two-sided change under field_ownership; fields not listed are shared
OWNER = {"legal_name": "remote", "tax_id": "remote", "is_active": "remote", "email": "local", "phone": "local", "address": "local"}


def norm(value: Any) -> Any:
    """The comparable form of a field value (see "normalised" above)."""
    if isinstance(value, str):
        value = value.strip()
    return None if value in (None, "", {}, []) else value


def same(a: Any, b: Any) -> bool:
    return norm(a) == norm(b)


@dataclass(frozen=True)
class Conflict:
    field: str
    base: Any
    local: Any
    remote: Any


@dataclass
class Merged:
    values: dict[str, Any]  # the local row's fields after the merge
    base: dict[str, Any]  # the new synced_values: the remote's values
    conflicts: list[Conflict] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)  # local fields the merge changed

    @property
    def agreed(self) -> set[str]:
        return {f for f, v in self.values.items() if same(v, self.base.get(f))}


def _two_sided(name: str, policy: str) -> str:
    """'local', 'remote' or 'conflict' for a field changed differently on both sides."""
    if policy == "remote_wins":
        return "remote"
    if policy == "local_wins":
        return "local"
    if policy == "manual":
        return "conflict"
    if policy == "field_ownership":
        return OWNER.get(name, "conflict")
    raise ValidationError(f"unknown conflict policy '{policy}'; choose one of {', '.join(POLICIES)}")


def merge(base: dict[str, Any] | None, local: dict[str, Any], remote: dict[str, Any], policy: str) -> Merged:
    """Merge every field of `remote` as the module docstring says (pure; writes nothing)."""
    merged = Merged(values={}, base=dict(remote))
    for name, theirs in remote.items():
        ours = local.get(name)
        if same(ours, theirs):
            winner = "local"
        elif base is None:
            winner = "remote" if norm(ours) is None else "local" if norm(theirs) is None else _two_sided(name, policy)
        elif same(ours, base.get(name)):
            winner = "remote"
        elif same(theirs, base.get(name)):
            winner = "local"
        else:
            winner = _two_sided(name, policy)
        if winner == "conflict":
            merged.conflicts.append(Conflict(name, None if base is None else base.get(name), ours, theirs))
            winner = "local"
        merged.values[name] = theirs if winner == "remote" else ours
        if winner == "remote" and not same(ours, theirs):
            merged.changed.add(name)
    return merged


# ---- sync_conflict rows ------------------------------------------------------------------------
def record_conflicts(
    conn: Connection, *, company_id: int, integration_id: int, entity_type: str, local_id: int, remote_id: str | None,
    conflicts: Iterable[Conflict],
) -> int:
    """Open (or refresh) one conflict row per field; a field keeps a single open row."""
    rows = [{"company_id": company_id, "integration_id": integration_id, "entity_type": entity_type, "local_id": local_id,
             "remote_id": remote_id, "field": c.field, "base_value": c.base, "local_value": c.local, "remote_value": c.remote}
            for c in conflicts]
    if not rows:
        return 0
    statement = insert(sync_conflict).values(rows)
    conn.execute(statement.on_conflict_do_update(
        index_elements=["integration_id", "entity_type", "local_id", "field"],
        index_where=sync_conflict.c.status == "open",
        set_={name: statement.excluded[name] for name in ("remote_id", "base_value", "local_value", "remote_value")},
    ))
    return len(rows)


def close_converged(conn: Connection, integration_id: int, entity_type: str, local_id: int, fields: Iterable[str]) -> None:
    """Both sides now agree on these fields: their open conflicts are settled by themselves."""
    fields = list(fields)
    if fields:
        conn.execute(
            sa.update(sync_conflict)
            .where(sync_conflict.c.integration_id == integration_id, sync_conflict.c.entity_type == entity_type,
                   sync_conflict.c.local_id == local_id, sync_conflict.c.field.in_(fields), sync_conflict.c.status == "open")
            .values(status="resolved", resolution="converged", resolved_at=sa.func.now())
        )


def with_open_conflicts(conn: Connection, integration_id: int, entity_type: str, local_ids: Iterable[int]) -> set[int]:
    ids = list(local_ids)
    if not ids:
        return set()
    return set(conn.execute(
        sa.select(sync_conflict.c.local_id).distinct()
        .where(sync_conflict.c.integration_id == integration_id, sync_conflict.c.entity_type == entity_type,
               sync_conflict.c.status == "open", sync_conflict.c.local_id.in_(ids))
    ).scalars())
