"""CPU-heavy work (password hashing, image decoding) kept off the gevent event loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def off_event_loop(work: Callable[..., Any], *args: Any) -> Any:
    """Run `work(*args)` in a real thread under gevent, so one login or upload cannot freeze
    the process's other requests and sockets (hashlib's scrypt and Pillow's decoders release
    the GIL); elsewhere (threading mode, tests) it simply runs here."""
    try:
        from gevent import get_hub
        from gevent.monkey import is_module_patched
    except ImportError:  # pragma: no cover - gevent is pinned, but the app runs without it
        return work(*args)
    if is_module_patched("threading"):
        return get_hub().threadpool.apply(work, args)
    return work(*args)
