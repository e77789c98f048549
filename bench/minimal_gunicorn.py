"""gunicorn settings for the minimal baseline app: the project's own, minus its worker hook.

gunicorn.conf.py's `post_worker_init` imports Farmlive (orders.tasks), which registers the app's
SQLAlchemy listeners on every engine in the process; the baseline must run none of that code,
yet keep the same connections, keep-alive and timeouts, so those are copied from the real file.
"""

from __future__ import annotations

import runpy
from pathlib import Path

_PROJECT = runpy.run_path(str(Path(__file__).resolve().parent.parent / "gunicorn.conf.py"))
globals().update(
    {
        name: value
        for name, value in _PROJECT.items()
        if not name.startswith("_") and name != "post_worker_init" and not callable(value)
    }
)
