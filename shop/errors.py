"""Domain failures and the one place that turns every failure into the API.md error shape."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import (
    Flask,
    Response,
    g,
    has_request_context,
    jsonify,
    make_response,
    render_template,
    request,
)
from flask_wtf.csrf import CSRFError
from sqlalchemy import event
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session
from werkzeug.exceptions import HTTPException

from shop.extensions import db
from shop.i18n import N_

log = logging.getLogger(__name__)


class DomainError(Exception):
    """A failure a user can understand; subclasses set the HTTP status and error code."""

    status = 409
    code = "conflict"
    message = N_("The request conflicts with the current state.")
    retry_after: int | None = None  # seconds, sent as Retry-After (busy, not broken)

    def __init__(self, message: str | None = None, *, fields: dict | None = None) -> None:
        super().__init__(message or self.message)
        self.message = message or self.message
        self.fields = plain_fields(fields or {})


def plain_fields(fields: Any) -> Any:
    """Field errors with every key a string, as JSON keys are.

    marshmallow keys a list's items by index and puts a list-wide error under "_schema" in the
    same dict (`{1: [...], "_schema": [...]}`): such mixed keys cannot be sorted, and a JSON
    writer that sorts keys would crash on them while answering the 422.
    """
    if isinstance(fields, dict):
        return {str(key): plain_fields(value) for key, value in fields.items()}
    if isinstance(fields, list | tuple):
        return [plain_fields(value) for value in fields]
    return fields


class NotFound(DomainError):
    status, code, message = 404, "not_found", N_("Not found.")


class Forbidden(DomainError):
    status, code, message = 403, "forbidden", N_("You are not allowed to do this.")


class Invalid(DomainError):
    status, code, message = 422, "invalid", N_("Some fields are invalid.")


class Conflict(DomainError):
    status, code, message = 409, "conflict", N_("The request conflicts with the current state.")


class Malformed(DomainError):
    status, code, message = 400, "bad_request", N_("The request body is malformed.")


class ServiceUnavailable(DomainError):
    status, code = 503, "unavailable"
    message = N_("A service we depend on is unavailable; try again.")


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    500: "server_error",
    503: "unavailable",
}


def _flatten_fields(messages: dict) -> dict:
    """webargs nests errors by location ({"json": {...}}); API.md wants field names."""
    fields: dict = {}
    for location, errors in messages.items():
        if isinstance(errors, dict) and location in {"json", "query", "form", "files", "headers"}:
            fields.update(errors)
        else:
            fields[location] = errors
    return fields


def error_response(status: int, code: str, message: str, fields: dict | None = None) -> Response:
    """Build the one error body of API.md."""
    fields = plain_fields(fields or {})
    response = jsonify({"error": {"code": code, "message": message, "fields": fields}})
    response.status_code = status
    return response


def wants_json() -> bool:
    """True for API and webhook URLs, which never get an HTML page."""
    return request.path.startswith(("/api/", "/webhooks/"))


def _page(status: int, message: str, fields: dict | None = None):
    shown = _field_list(fields or {})
    return render_template("error.html", status=status, message=message, fields=shown), status


def _field_list(fields: dict, prefix: str = "") -> list[tuple[str, list[str]]]:
    """Nested field errors as ("address.name", [messages]) lines for the error page."""
    lines: list[tuple[str, list[str]]] = []
    for name, problems in fields.items():
        if isinstance(problems, dict):
            lines.extend(_field_list(problems, f"{prefix}{name}."))
        elif isinstance(problems, list | tuple):
            lines.append((f"{prefix}{name}", [str(p) for p in problems if isinstance(p, str)]))
        else:
            lines.append((f"{prefix}{name}", [str(problems)]))
    return lines


def _rolled_back(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Every error answer starts by rolling the request's transaction back, so a failed flush
    cannot become PendingRollbackError on the error page; a dead connection answers 503."""

    @wraps(handler)
    def wrapper(err: Any):
        failure = end_transaction()
        if failure is not None and is_outage(failure):
            return _unavailable(failure)
        return handler(err)

    return wrapper


class LastResort:
    """The outermost WSGI layer: whatever escapes Flask itself (a teardown that raised, an error
    handler that failed while answering) still answers in our shape, never the server's own HTML
    "Internal Server Error": API.md's JSON 500 under /api and /webhooks, plain text elsewhere.

    Flask calls start_response before its teardown runs, but nothing is sent until the body is
    returned, so start_response may be called again with the exception (PEP 3333).
    """

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable):
        started = []

        def recorded_start_response(*args: Any) -> Any:
            started.append(True)
            return start_response(*args)

        try:
            return self.wsgi_app(environ, recorded_start_response)
        except StopIteration:  # a WebSocket's end, signalled to the server: not a failure
            raise
        except Exception:
            path = environ.get("PATH_INFO", "")
            log.exception("escaped Flask on %s %s", environ.get("REQUEST_METHOD"), path)
            message = "Something went wrong on our side."
            if path.startswith(("/api/", "/webhooks/")):
                error = {"code": "server_error", "message": message, "fields": {}}
                body, kind = json.dumps({"error": error}), "application/json"
            else:
                body, kind = message, "text/plain; charset=utf-8"
            data = body.encode()
            headers = [("Content-Type", kind), ("Content-Length", str(len(data)))]
            status = "500 INTERNAL SERVER ERROR"
            if started:  # replacing a status already given needs the exception (PEP 3333)
                start_response(status, headers, sys.exc_info())
            else:
                start_response(status, headers)
            return [data]


def register_errorhandlers(app: Flask) -> None:
    """Map domain errors, HTTP errors, CSRF failures and crashes to JSON or a page."""
    app.wsgi_app = LastResort(app.wsgi_app)  # outermost: installed after every other layer
    app.after_request(_end_request_transaction)
    app.teardown_appcontext(_release_session)  # runs before Flask-SQLAlchemy's own removal

    @app.errorhandler(DomainError)
    @_rolled_back
    def _domain(err: DomainError):
        if wants_json():
            response = error_response(err.status, err.code, err.message, err.fields)
        else:
            response = make_response(_page(err.status, err.message, err.fields))
        if err.retry_after is not None:
            response.headers["Retry-After"] = str(err.retry_after)
        return response

    @app.errorhandler(CSRFError)
    @_rolled_back
    def _csrf(err: CSRFError):
        if wants_json():
            return error_response(
                400, "csrf", err.description or N_("CSRF token missing or invalid.")
            )
        return _page(400, err.description)

    @app.errorhandler(HTTPException)
    @_rolled_back
    def _http(err: HTTPException):
        data = getattr(err, "data", None) or {}
        status = err.code or 500
        message = data.get("message") or err.description or err.name
        fields = _flatten_fields(data.get("messages") or data.get("errors") or {})
        if status == 422 and not data.get("message"):
            message = N_("Some fields are invalid.")
        if status == 429:
            message = f"Too many requests: {err.description}"
        if wants_json():
            response = error_response(status, _HTTP_CODES.get(status, "error"), message, fields)
            for name, value in err.get_headers() or []:
                if name.lower() in {"retry-after", "allow"}:
                    response.headers[name] = value
            return response
        return _page(status, message)

    @app.errorhandler(RecursionError)
    @_rolled_back
    def _too_deep(err: RecursionError):
        """JSON nested thousands deep is malformed input (the decoder gives up), not our bug."""
        if request.content_length:
            message = N_("The request body is nested too deeply.")
            if wants_json():
                return error_response(400, "bad_request", message)
            return _page(400, message)
        return _crash(err)

    @app.errorhandler(OverflowError)
    @_rolled_back
    def _overflow(err: OverflowError):
        """A number too large for the database (SQLite's driver refuses it) is bad input."""
        return _out_of_range(err)

    @app.errorhandler(DataError)
    @_rolled_back
    def _bad_data(err: DataError):
        """The database refused a value (PostgreSQL: number out of range, text too long)."""
        return _out_of_range(err)

    @app.errorhandler(Exception)
    @_rolled_back
    def _crash(err: Exception):
        if is_outage(err):
            return _unavailable(err)
        log.exception("unhandled error on %s %s", request.method, request.path)
        message = (
            RECORDED if g.get("farmlive_committed") else N_("Something went wrong on our side.")
        )
        if wants_json():
            return error_response(500, "server_error", message)
        return _page(500, message)


def _out_of_range(err: Exception):
    """400 for a value our validation let through but the database cannot store; logged to fix."""
    log.warning("value out of range on %s %s: %s", request.method, request.path, err)
    message = N_("A value in the request is out of range.")
    if wants_json():
        return error_response(400, "bad_request", message)
    return _page(400, message)


def is_outage(err: BaseException) -> bool:
    """True when a database or Redis we depend on is unreachable (restart, network), not a bug."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeout
    from sqlalchemy.exc import DBAPIError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    # Redis: every part that uses it goes on without it (shop/redis_link.py), so a Redis error
    # reaching here is a new use that does not yet; it still gets a fast 503, not a 500.
    if isinstance(err, PoolTimeout | RedisConnectionError | RedisTimeout):
        return True
    if not isinstance(err, DBAPIError):
        return False
    if err.connection_invalidated:
        return True
    # Connection-level failures only (no SQLSTATE: refused, reset; 08 connection exception;
    # 57P shutdown/starting up; 53 too many connections; 57014 a statement that outran
    # DB_STATEMENT_TIMEOUT_SECONDS, a database too slow right now). A deadlock or serialization
    # failure is a bug to see in the logs, not an outage. SQLite's errors ("locked") have no
    # SQLSTATE.
    sqlstate = getattr(err.orig, "sqlstate", None)
    return isinstance(err, OperationalError) and (
        sqlstate is None or sqlstate == "57014" or sqlstate.startswith(("08", "57P", "53"))
    )


def _unavailable(err: BaseException):
    """A fast 503 in the usual shape; pre-ping makes the first request after recovery work."""
    log.warning("dependency unavailable on %s %s: %s", request.method, request.path, err)
    message = RECORDED if g.get("farmlive_committed") else ServiceUnavailable.message
    if wants_json():
        response = error_response(503, ServiceUnavailable.code, message)
    else:
        try:
            response = _page(503, message)
        except Exception:  # the page itself may need the database (current_user)
            response = (message, 503, {"Content-Type": "text/plain; charset=utf-8"})
        response = make_response(response)
    response.headers["Retry-After"] = "2"
    return response


# --- the request's transaction: ended before the answer leaves --------------------------------


@event.listens_for(Session, "after_commit")
def _note_commit(session: Session) -> None:
    """Remember on the request (not the session, which an error answer discards) that its
    change was committed."""
    if has_request_context():
        g.farmlive_committed = True


#: A request that failed after its change was committed must not read as "nothing happened".
RECORDED = N_(
    "Your request went through, but its answer could not be completed. Reload to see where it"
    " stands."
)


def end_transaction() -> BaseException | None:
    """Roll back what the request left open (services commit their own work, so only reads);
    return the failure instead of raising it: a connection that died mid-request."""
    if not db.session.registry.has():  # the request never used the database
        return None
    session = db.session()
    if not session.in_transaction():
        return None
    try:
        session.rollback()
    except Exception as err:  # the session is unusable now; the next use gets a fresh one
        discard_session()
        return err
    return None


def _end_request_transaction(response: Response) -> Response:
    """End the transaction while the answer can still change, not in the teardown after it.

    If PostgreSQL went away after the last query, the rollback fails here: a request that
    committed nothing answers 503 (retrying it is safe), one whose change was committed keeps
    its answer, since that change happened. Before this, the failure surfaced in
    Flask-SQLAlchemy's teardown and the server sent its own HTML "Internal Server Error".
    """
    committed = g.get("farmlive_committed", False)
    failure = end_transaction()
    if failure is None:
        return response
    if not is_outage(failure):
        log.error(
            "could not end the transaction of %s %s", request.method, request.path, exc_info=failure
        )
        return response
    if committed:
        log.warning(
            "connection lost after %s %s committed: %s", request.method, request.path, failure
        )
        return response
    return make_response(_unavailable(failure))


def _release_session(_exc: BaseException | None) -> None:
    """Last line: removing the session never escapes the request as the server's own 500."""
    try:
        db.session.remove()
    except Exception as err:
        discard_session()
        log.warning("database session not closed cleanly: %s", err)


def discard_session() -> None:
    """Forget the request's session without touching its (dead) connection again."""
    try:
        db.session.remove()
    except Exception:  # closing needs the connection; the pool already invalidated it
        db.session.registry.clear()
