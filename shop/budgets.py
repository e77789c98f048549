"""Separate database connection budgets: the shop's requests, socket events, background work.

One pool per process served everything, so a storm of 1,200 viewers joining took every
connection and checkouts and the expiry pass waited on it ("QueuePool limit of size 20 reached").
On PostgreSQL each budget now has a pool of its own: web requests keep DB_POOL_SIZE connections,
socket events get DB_SOCKET_POOL_SIZE and background work (expiry, re-drives, recording viewer
visits, stock news) DB_BACKGROUND_POOL_SIZE, and none can take another's.

Code says which budget it spends with `with budget("sockets"):` (shop.sockets does it for every
socket event, orders.tasks for every background pass); a session that first touches the
database inside it is bound to that budget's pool (`BudgetedSession.get_bind`). Outside any
budget, and on SQLite, or with a budget's size set to 0, the app's own engine is used.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from flask import Flask, current_app, has_app_context
from flask_sqlalchemy.session import Session as FlaskSession
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

SOCKETS, BACKGROUND = "sockets", "background"
_SIZES = {SOCKETS: "DB_SOCKET_POOL_SIZE", BACKGROUND: "DB_BACKGROUND_POOL_SIZE"}
_ENGINES = "farmlive.budget_engines"
_current: ContextVar[str | None] = ContextVar("farmlive_db_budget", default=None)


@contextmanager
def budget(name: str) -> Iterator[None]:
    """Database work inside this block draws on `name`'s pool (SOCKETS or BACKGROUND)."""
    token = _current.set(name)
    try:
        yield
    finally:
        _current.reset(token)


@contextmanager
def background(app: Flask, *, url_root: str | None = None) -> Iterator[None]:
    """Background work's context: `app`'s context (a request context at `url_root` when the
    work builds URLs), drawing on the BACKGROUND pool, its session handed back at the end."""
    from shop.extensions import db

    context = app.test_request_context(base_url=url_root) if url_root else app.app_context()
    with context, budget(BACKGROUND):
        try:
            yield
        finally:
            db.session.remove()


class BudgetedSession(FlaskSession):
    """Flask-SQLAlchemy's session, bound to the current budget's engine when it has one."""

    def get_bind(self, mapper: Any = None, clause: Any = None, bind: Any = None, **kwargs: Any):
        name = _current.get()
        if bind is None and name is not None and has_app_context():
            engine = current_app.extensions.get(_ENGINES, {}).get(name)
            if engine is not None:
                return engine
        return super().get_bind(mapper, clause=clause, bind=bind, **kwargs)


def init_app(app: Flask) -> None:
    """Create the budgets' engines (PostgreSQL only), with the app engine's options."""
    uri: str = app.config["SQLALCHEMY_DATABASE_URI"]
    engines: dict[str, Engine] = {}
    if uri.startswith("postgresql"):
        options = dict(app.config["SQLALCHEMY_ENGINE_OPTIONS"])
        for name, setting in _SIZES.items():
            size = int(app.config.get(setting) or 0)
            if size > 0:
                engines[name] = create_engine(uri, **{**options, "pool_size": size})
    app.extensions[_ENGINES] = engines


def engines(app: Flask) -> dict[str, Engine]:
    """Each budget's own engine (none on SQLite or when its size is 0)."""
    return dict(app.extensions.get(_ENGINES, {}))


def dispose(app: Flask) -> None:
    for engine in engines(app).values():
        engine.dispose()
