"""The Farmlive application factory: the one place that knows shop, orders and live."""

from __future__ import annotations

import logging

from flask import Flask, request
from flask_login import current_user
from werkzeug.exceptions import BadRequest
from werkzeug.routing import IntegerConverter

from shop import (
    budgets,
    database,  # noqa: F401 - SQLite pragmas and BEGIN modes
)
from shop import extensions as ext
from shop.i18n import N_
from shop.security import init_app as install_security
from shop.text import init_app as install_text_checks


def create_app(config_object: str | object = "config.Config", **overrides) -> Flask:
    """Build the app. No side effects beyond binding extensions: no migrations, no network."""
    app = Flask(__name__, instance_path=_instance_path())
    app.url_map.converters["int"] = DatabaseIdConverter
    install_text_checks(app)  # the first hook: bad text is refused before anything reads it
    app.config.from_object(config_object)
    app.config.update(overrides)
    install_security(app)  # refuses a known SECRET_KEY in production; headers on every answer
    _configure_engine(app)
    if app.config["TRUSTED_PROXIES"]:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    logging.basicConfig(level=logging.INFO)
    # Hooks other packages append to in their init_app: storefront sections are callables
    # returning (template_name, context) or None, rendered in order on the home page; coop
    # sections are the same for the cooperative dashboard, called with the cooperative's id
    # (None: an admin looking at all); seeders are callables yielding progress lines, run by
    # `seed-demo` after the shop's own data.
    app.extensions["farmlive.storefront_sections"] = []
    app.extensions["farmlive.coop_sections"] = []
    app.extensions["farmlive.seeders"] = []

    register_extensions(app)
    register_blueprints(app)
    register_errorhandlers(app)
    register_commands(app)
    register_template_helpers(app)
    return app


class DatabaseIdConverter(IntegerConverter):
    """`<int:id>` stops at the largest database integer: a bigger id is 404, not an overflow."""

    def __init__(self, map, fixed_digits=0, min=None, max=2**31 - 1, signed=False) -> None:  # noqa: A002
        super().__init__(map, fixed_digits=fixed_digits, min=min, max=max, signed=signed)


def _instance_path() -> str:
    from config import INSTANCE_DIR

    return str(INSTANCE_DIR)


def _configure_engine(app: Flask) -> None:
    """Pool settings for PostgreSQL; WAL, a busy timeout and immediate writes for SQLite."""
    uri: str = app.config["SQLALCHEMY_DATABASE_URI"]
    options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
    if uri.startswith("postgresql"):
        options.setdefault("pool_size", app.config["DB_POOL_SIZE"])
        options.setdefault("max_overflow", app.config["DB_MAX_OVERFLOW"])
        options.setdefault("pool_timeout", app.config["DB_POOL_TIMEOUT"])
        options.setdefault("pool_pre_ping", True)
        options.setdefault("connect_args", _postgresql_connect_args(app.config))
    elif uri.startswith("sqlite"):
        connect_args = dict(options.get("connect_args") or {})
        connect_args.setdefault("timeout", 30)
        connect_args.setdefault("check_same_thread", False)
        options["connect_args"] = connect_args
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options


def _postgresql_connect_args(config: dict) -> dict:
    """libpq settings that bound every wait on PostgreSQL (README "Outages").

    connect_timeout bounds opening a connection; TCP keepalives and tcp_user_timeout drop a
    connection whose peer went silent (the kernel's own default waits about 15 minutes);
    statement_timeout and idle_in_transaction_session_timeout are enforced by the server, so no
    slow query or forgotten transaction holds locks for long.
    """
    args: dict = {"connect_timeout": 5}
    user_timeout = config["DB_TCP_USER_TIMEOUT_SECONDS"]
    if user_timeout:
        idle = max(1, int(config["DB_KEEPALIVES_IDLE_SECONDS"]))
        args.update(
            keepalives=1,
            keepalives_idle=idle,
            keepalives_interval=max(1, idle // 2),
            keepalives_count=3,
            tcp_user_timeout=int(user_timeout * 1000),
        )
    server_settings = [
        ("statement_timeout", config["DB_STATEMENT_TIMEOUT_SECONDS"]),
        ("idle_in_transaction_session_timeout", config["DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS"]),
    ]
    options = " ".join(f"-c {name}={int(seconds * 1000)}" for name, seconds in server_settings)
    if options:
        args["options"] = options
    return args


def register_extensions(app: Flask) -> None:
    ext.db.init_app(app)
    budgets.init_app(app)  # the socket events' and background work's own pools
    ext.migrate.init_app(app, ext.db, directory=str(_root() / "migrations"), render_as_batch=True)
    ext.login_manager.init_app(app)
    app.before_request(_refuse_malformed_bodies)  # before the CSRF check reads the form
    ext.csrf.init_app(app)
    ext.limiter.init_app(app)
    ext.babel.init_app(app, locale_selector=_select_locale)
    ext.api.init_app(app)
    import live.events  # noqa: F401 - Socket.IO namespace handlers
    import orders.fulfilment.events  # noqa: F401
    from shop.redis_link import socketio_queue

    ext.socketio.init_app(
        app,
        async_mode=app.config["SOCKETIO_ASYNC_MODE"],
        cors_allowed_origins=app.config["SOCKETIO_ALLOWED_ORIGINS"] or None,
        manage_session=False,
        **socketio_queue(app),  # REDIS_URL: a queue whose listener notices a silent Redis
    )
    from shop import accounts

    accounts.init_app(app)
    import live.models  # noqa: F401 - every model known to metadata and Alembic
    import orders.models  # noqa: F401


def _refuse_malformed_bodies() -> None:
    """400 for bodies the parsers downstream would crash on instead of refusing.

    A multipart part without a name trips Flask-WTF's CSRF check; JSON that `json.loads`
    refuses with a plain ValueError (a number of 5,000 digits) gets past webargs' handler.
    """
    from shop.errors import Malformed

    if request.mimetype == "multipart/form-data" and (
        None in request.form or None in request.files
    ):
        raise Malformed(N_("Every part of a multipart form needs a name."))
    if request.path.startswith("/api/") and request.is_json and request.get_data(cache=True):
        try:
            request.get_json()  # Flask turns any ValueError from json.loads into BadRequest
        except BadRequest:
            raise Malformed(
                N_("The body is not valid JSON."), fields={"json": ["Invalid JSON body."]}
            ) from None


API_MODULES = (
    "shop.api",
    "orders.api",
    "orders.fulfilment.api",
    "orders.reports.api",
    "live.api",
    "live.reports.api",
)
PAGE_MODULES = (
    "shop.views",
    "shop.health",
    "orders.views",
    "orders.fulfilment.views",
    "orders.reports.views",
    "live.views",
    "live.reports.views",
)


def register_blueprints(app: Flask) -> None:
    """Each module exposes `blueprints`, optionally `csrf_exempt` and an `init_app(app)` hook."""
    from importlib import import_module

    for name in API_MODULES + PAGE_MODULES:
        module = import_module(name)
        for blueprint in module.blueprints:
            if name in API_MODULES:
                prefix = "/api/v1" + (blueprint.url_prefix or "")
                ext.api.register_blueprint(blueprint, url_prefix=prefix)
            else:
                app.register_blueprint(blueprint)
        for blueprint in getattr(module, "csrf_exempt", ()):
            ext.csrf.exempt(blueprint)
        if hasattr(module, "init_app"):
            module.init_app(app)


def register_errorhandlers(app: Flask) -> None:
    from shop.errors import register_errorhandlers as register

    register(app)


def register_commands(app: Flask) -> None:
    from orders.cli import orders_cli
    from shop.cli import demo_logins, seed_demo, users_cli

    app.cli.add_command(users_cli)
    app.cli.add_command(seed_demo)
    app.cli.add_command(demo_logins)
    app.cli.add_command(orders_cli)


def register_template_helpers(app: Flask) -> None:
    from shop.templating import init_app

    init_app(app)


def _select_locale() -> str:
    from flask import session

    chosen = request.args.get("lang") or session.get("lang")
    if chosen in ("zh", "en"):
        return chosen
    return request.accept_languages.best_match(["zh", "en"], default="zh") or "zh"


def _root():
    from config import BASE_DIR

    return BASE_DIR


__all__ = ["create_app", "current_user"]
