"""Socket.IO namespace /live: rooms per session."""

from __future__ import annotations
