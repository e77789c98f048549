"""`flask --app wsgi orders auto-deliver`: deliver orders the buyers never confirmed."""

from __future__ import annotations

import click

from orders.cli import orders_cli


@orders_cli.command("auto-deliver")
def auto_deliver() -> None:
    """Mark delivered every order shipped more than AUTO_DELIVER_DAYS ago (run it daily)."""
    from orders.fulfilment.services import auto_deliver_due

    total = 0
    while count := auto_deliver_due():
        total += count
    click.echo(f"delivered {total} order(s)")
