"""`flask --app wsgi orders ...` commands."""

from __future__ import annotations

import click
from flask.cli import AppGroup

orders_cli = AppGroup("orders", help="Order maintenance.")


@orders_cli.command("expire")
def expire() -> None:
    """Release the stock of unpaid orders whose hold has passed (safe beside the server's task)."""
    from orders.services import expire_due

    total = 0
    while True:
        count = expire_due()
        total += count
        if count == 0:
            break
    click.echo(f"expired {total} order(s)")
