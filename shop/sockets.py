"""Socket.IO event handlers that answer every payload, as the HTTP edges do.

A handler wrapped in `socket_event` gets exactly one JSON object, already loaded by its schema
(and so checked for NUL and text UTF-8 cannot encode, by `BaseSchema`); anything else, and any
domain failure, is acknowledged with `{ok: false, error: {code, message, fields}}` in API.md's
error shape instead of raising. The database session is given back after every event, since
socket handlers get no Flask-SQLAlchemy teardown, and it draws on the socket events' own
connections (shop.budgets).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from marshmallow import Schema, ValidationError

from shop.budgets import SOCKETS, budget
from shop.errors import DomainError, Invalid, Malformed, discard_session
from shop.extensions import db
from shop.i18n import N_
from shop.text import text_errors

Handler = Callable[..., Any]
NOT_AN_OBJECT = N_("The event's data must be one JSON object.")


def error_ack(err: DomainError) -> dict[str, Any]:
    """The acknowledgement of a refused event: API.md's error shape, plus `ok: false`."""
    return {
        "ok": False,
        "error": {"code": err.code, "message": err.message, "fields": err.fields or {}},
    }


def load_payload(args: tuple[Any, ...], schema: Schema | None = None) -> dict[str, Any]:
    """The event's one argument, an object: loaded by `schema`, or only checked for bad text.

    Raises Malformed (400) for no argument, several, or one that is not an object, and Invalid
    (422) naming each bad field.
    """
    if len(args) != 1 or not isinstance(args[0], dict):
        raise Malformed(NOT_AN_OBJECT, fields={"data": [NOT_AN_OBJECT]})
    if schema is None:
        errors = text_errors(args[0])
        if errors:
            raise Invalid(fields=errors)
        return args[0]
    try:
        return schema.load(args[0])
    except ValidationError as err:
        raise Invalid(fields=err.normalized_messages()) from None


def socket_event(
    schema: Schema | None = None, *, payload: bool = True
) -> Callable[[Handler], Handler]:
    """Decorate a handler (under `@socketio.on`) so it receives its loaded payload and never
    raises for bad input: `payload=False` passes the arguments through untouched (a catch-all
    handler gets the event name first)."""

    def decorate(func: Handler) -> Handler:
        @wraps(func)
        def wrapper(*args: Any) -> Any:
            with budget(SOCKETS):  # never the connections checkout and background work need
                try:
                    return func(load_payload(args, schema)) if payload else func(*args)
                except DomainError as err:
                    _rollback()
                    return error_ack(err)
                finally:
                    discard_session()

        return wrapper

    return decorate


def _rollback() -> None:
    try:
        db.session.rollback()
    except Exception:  # a dead connection: the session is discarded right after anyway
        pass
