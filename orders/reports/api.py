"""/api/v1 rows of this area."""

from __future__ import annotations

blueprints: list = []
