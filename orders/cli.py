"""`flask --app wsgi orders ...` commands."""

from __future__ import annotations

from flask.cli import AppGroup

orders_cli = AppGroup("orders", help="Order maintenance.")
