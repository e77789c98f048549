"""Live session report rows."""

from __future__ import annotations

blueprints: list = []
