"""Unbound extension objects; `create_app` binds them. Other modules import from here."""

from __future__ import annotations

import marshmallow as ma
from flask import Flask
from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_smorest import Api
from flask_socketio import SocketIO
from flask_sqlalchemy import SQLAlchemy
from flask_wtf import CSRFProtect
from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from shop.budgets import BudgetedSession

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base whose constraint names are stable across databases and migrations."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ErrorDetailSchema(ma.Schema):
    """What went wrong: a stable code, a sentence for people, and the bad fields by name."""

    code = ma.fields.Str(required=True, metadata={"description": "machine-readable, e.g. sold_out"})
    message = ma.fields.Str(required=True)
    fields = ma.fields.Dict(required=True, metadata={"description": "each bad field's messages"})


class ErrorSchema(ma.Schema):
    """API.md's one error body, so the OpenAPI document describes what errors really look like."""

    error = ma.fields.Nested(ErrorDetailSchema, required=True)


class FarmliveApi(Api):
    """flask-smorest Api whose errors are rendered by our own app-wide handler."""

    ERROR_SCHEMA = ErrorSchema

    def _register_error_handlers(self) -> None:  # noqa: D401 - hook override
        """Leave error rendering to `shop.errors` so pages get HTML and /api gets API.md JSON."""


class FarmliveLimiter(Limiter):
    """Flask-Limiter whose Redis storage gives up after REDIS_TIMEOUT_SECONDS: with the
    in-memory fallback (config), a silent Redis costs a login one short wait, not a hang."""

    def init_app(self, app: Flask) -> None:
        uri = app.config.get("RATELIMIT_STORAGE_URI") or ""
        if uri.startswith(("redis://", "rediss://")):
            from shop.redis_link import bounded_pool

            timeout, size = app.config["REDIS_TIMEOUT_SECONDS"], app.config["REDIS_MAX_CONNECTIONS"]
            app.config["RATELIMIT_STORAGE_OPTIONS"] = {
                "connection_pool": bounded_pool(uri, timeout, size),
                **(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}),
            }
        elif uri.startswith("valkey"):
            timeout = app.config["REDIS_TIMEOUT_SECONDS"]
            app.config["RATELIMIT_STORAGE_OPTIONS"] = {
                "socket_timeout": timeout,
                "socket_connect_timeout": timeout,
                **(app.config.get("RATELIMIT_STORAGE_OPTIONS") or {}),
            }
        super().init_app(app)


db = SQLAlchemy(model_class=Base, session_options={"class_": BudgetedSession})
migrate = Migrate()
login_manager = LoginManager()
socketio = SocketIO()
csrf = CSRFProtect()
babel = Babel()
api = FarmliveApi()
limiter = FarmliveLimiter(key_func=get_remote_address, default_limits=[])
