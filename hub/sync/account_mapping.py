"""Account mapping: which account of an integration's chart each of the hub's own expense
categories (`invoice_line.category`) is booked to when invoices are exported.

Stored per integration in `account_mapping` (one account per category). An account is
named by its code, its remote id or its exact name, and must exist, active, in the chart
imported from that integration (the `accounts` stream), so a mapping can never point at
an account the ledger would refuse. Invoice export looks lines up here; a line whose
category has no mapping blocks its invoice (see hub/sync/export*).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import Connection

from hub.errors import NotFoundError, ValidationError
from hub.schema import account_mapping, gl_account, integration, invoice, invoice_line


def _integration(conn: Connection, integration_id: int) -> sa.Row:
    row = conn.execute(
        sa.select(integration.c.id, integration.c.company_id, integration.c.provider, integration.c.integration_type)
        .where(integration.c.id == integration_id)
    ).first()
    if row is None:
        raise NotFoundError(f"no integration {integration_id}")
    if row.integration_type != "accounting":
        raise ValidationError(f"integration {integration_id} is {row.provider}, not an accounting integration")
    return row


def find_account(conn: Connection, integration_id: int, ref: str) -> sa.Row:
    """The imported account named `ref` (code, remote id, or exact name ignoring case)."""
    owner = _integration(conn, integration_id)
    ref = ref.strip()
    rows = conn.execute(
        sa.select(gl_account).where(
            gl_account.c.integration_id == integration_id,
            sa.or_(gl_account.c.code == ref, gl_account.c.remote_id == ref, sa.func.lower(gl_account.c.name) == ref.lower()),
        )
    ).all()
    if not rows:
        imported = conn.scalar(sa.select(sa.func.count()).where(gl_account.c.integration_id == integration_id))
        hint = "see `hub mapping accounts`" if imported else f"import the chart first (materialize {owner.provider}/accounts)"
        raise NotFoundError(f"no account '{ref}' in the chart imported from {owner.provider} integration {integration_id}; {hint}")
    by_code = [r for r in rows if r.code == ref or r.remote_id == ref]
    if len(by_code) == 1:
        rows = by_code
    if len(rows) > 1:
        names = ", ".join(f"{r.code or '-'} {r.name}" for r in rows)
        raise ValidationError(f"'{ref}' names several accounts ({names}); use the code or remote id")
    if not rows[0].is_active:
        raise ValidationError(f"account '{rows[0].name}' is inactive in {owner.provider}; map to an active account")
    return rows[0]


def set_mapping(conn: Connection, integration_id: int, category: str, account_ref: str) -> dict[str, Any]:
    """Map `category` to the account `account_ref` (replacing an earlier mapping)."""
    category = category.strip()
    if not category:
        raise ValidationError("category must not be empty")
    owner = _integration(conn, integration_id)
    return _store(conn, owner, category, find_account(conn, integration_id, account_ref))


def map_to_account(conn: Connection, integration_id: int, category: str, account_id: int) -> dict[str, Any]:
    """Map `category` to the imported account with this id (the settings page's picker names
    accounts by id, which no code or name can make ambiguous); the same checks as `set_mapping`."""
    category = category.strip()
    if not category:
        raise ValidationError("category must not be empty")
    owner = _integration(conn, integration_id)
    account = conn.execute(sa.select(gl_account).where(gl_account.c.id == account_id,
                                                       gl_account.c.integration_id == integration_id)).first()
    if account is None:
        raise NotFoundError(f"no account {account_id} in the chart imported from {owner.provider} integration {integration_id}")
    if not account.is_active:
        raise ValidationError(f"account '{account.name}' is inactive in {owner.provider}; map to an active account")
    return _store(conn, owner, category, account)


def _store(conn: Connection, owner: sa.Row, category: str, account: sa.Row) -> dict[str, Any]:
    integration_id = owner.id
    statement = insert(account_mapping).values(
        company_id=owner.company_id, integration_id=integration_id, local_category=category, gl_account_id=account.id,
        source="manual", confidence=None,
    )
    conn.execute(statement.on_conflict_do_update(
        index_elements=["integration_id", "local_category"],
        set_={"gl_account_id": account.id, "source": "manual", "confidence": None},
    ))
    return {"category": category, "code": account.code, "account": account.name, "remote_id": account.remote_id}


def remove_mapping(conn: Connection, integration_id: int, category: str) -> None:
    _integration(conn, integration_id)
    done = conn.execute(sa.delete(account_mapping).where(
        account_mapping.c.integration_id == integration_id, account_mapping.c.local_category == category))
    if done.rowcount == 0:
        raise NotFoundError(f"category '{category}' is not mapped for integration {integration_id}")


def list_mappings(conn: Connection, integration_id: int) -> list[sa.Row]:
    """Mappings with their account's code, name and whether it is still active."""
    _integration(conn, integration_id)
    return conn.execute(
        sa.select(account_mapping.c.local_category, account_mapping.c.source, gl_account.c.code, gl_account.c.name,
                  gl_account.c.remote_id, gl_account.c.is_active)
        .join(gl_account, gl_account.c.id == account_mapping.c.gl_account_id)
        .where(account_mapping.c.integration_id == integration_id)
        .order_by(account_mapping.c.local_category)
    ).all()


def unmapped_categories(conn: Connection, integration_id: int) -> list[tuple[str, int]]:
    """(category, lines) used by the company's invoices bound for this integration (the
    hub's own, or already linked to it) that have no mapping: what would block export."""
    owner = _integration(conn, integration_id)
    mapped = sa.select(account_mapping.c.local_category).where(account_mapping.c.integration_id == integration_id)
    rows = conn.execute(
        sa.select(invoice_line.c.category, sa.func.count())
        .join(invoice, invoice.c.id == invoice_line.c.invoice_id)
        .where(
            invoice.c.company_id == owner.company_id,
            sa.or_(invoice.c.integration_id.is_(None), invoice.c.integration_id == integration_id),
            invoice_line.c.category.is_not(None),
            invoice_line.c.category.not_in(mapped),
        )
        .group_by(invoice_line.c.category)
        .order_by(invoice_line.c.category)
    ).all()
    return [(category, count) for category, count in rows]


def list_accounts(conn: Connection, integration_id: int, search: str | None = None) -> list[sa.Row]:
    _integration(conn, integration_id)
    query = sa.select(gl_account.c.code, gl_account.c.name, gl_account.c.account_type, gl_account.c.remote_id,
                      gl_account.c.is_active).where(gl_account.c.integration_id == integration_id)
    if search:
        query = query.where(sa.or_(gl_account.c.name.ilike(f"%{search}%"), gl_account.c.code.ilike(f"{search}%")))
    return conn.execute(query.order_by(gl_account.c.code.nulls_last(), gl_account.c.name)).all()
