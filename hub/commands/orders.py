"""`hub orders ...`: delivery orders as the kitchen sees them (the POS screen's actions)."""

from __future__ import annotations

from typing import Optional

import sqlalchemy as sa
import typer

from hub import db
from hub.commands import typer_app
from hub.orders import kitchen
from hub.schema import external_order, pos_order

app = typer_app("Delivery orders: list them, and move a POS order along (the marketplace is told).")


@app.command("list")
def orders_list(limit: int = typer.Option(20, help="newest first"), status: Optional[str] = typer.Option(None, help="POS status")) -> None:
    """Recent POS orders with their marketplace order and status."""
    query = (
        sa.select(pos_order.c.id, pos_order.c.order_number, pos_order.c.status, pos_order.c.total_cents, pos_order.c.source,
                  external_order.c.external_id, external_order.c.status.label("marketplace_status"))
        .outerjoin(external_order, external_order.c.order_id == pos_order.c.id)
        .order_by(pos_order.c.id.desc()).limit(limit)
    )
    if status:
        query = query.where(pos_order.c.status == status)
    with db.engine().connect() as conn:
        rows = conn.execute(query).all()
    for r in rows:
        typer.echo(f"{r.id:>6} {r.order_number:<14} {r.status:<12} {r.total_cents / 100:>9.2f} {r.source:<9} "
                   f"{r.external_id or '-'} ({r.marketplace_status or '-'})")
    if not rows:
        typer.echo("no POS orders yet")


@app.command("set")
def orders_set(
    pos_order_id: int = typer.Argument(..., help="POS order id (hub orders list)"),
    status: str = typer.Argument(..., help="in_progress, ready, completed or cancelled"),
    reason: str = typer.Option("other", help=f"why it is cancelled: {', '.join(kitchen.CANCEL_REASONS)}"),
) -> None:
    """Move a POS order along; a marketplace order follows, and the order job tells the
    marketplace (DoorDash: ready for pickup, cancel; Uber Eats: cancel) on its next run."""
    with db.engine().begin() as conn:
        change = kitchen.set_pos_status(conn, pos_order_id, status, reason)
    line = f"POS order {pos_order_id}: {change.before} -> {change.after}"
    if change.marketplace_status:
        line += f"; marketplace order now {change.marketplace_status}"
    if change.push:
        line += f" (the order job will tell the marketplace: {change.push})"
    typer.echo(line)


