"""The live page and the host console."""

from __future__ import annotations

blueprints: list = []
