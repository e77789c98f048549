"""Socket.IO namespace /coop: a room per cooperative for its dashboard."""

from __future__ import annotations
