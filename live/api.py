"""/api/v1 for live sessions, pins, instant checkout and messages."""

from __future__ import annotations

blueprints: list = []
