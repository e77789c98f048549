"""Text that can be stored and shown: refused on the way in, made showable on the way out.

A JSON escape lets a client send a lone UTF-16 surrogate ("Zhang\\ud800"): Python keeps it in a
`str`, but nothing downstream can encode it. The database driver refuses it as a parameter, a
JSON column stores it escaped and hands it back, and every page, CSV or JSON answer that shows the
row then fails to encode, long after the request that brought it in. PostgreSQL text cannot hold
NUL either. So every string that comes in (schemas, forms, query strings, path parts, socket
events) is checked by `text_errors`, and whatever is already stored is shown with lone
surrogates replaced (`scrub`) instead of failing the whole answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from flask.json.provider import DefaultJSONProvider

from shop.i18n import N_

NUL_MESSAGE = N_("Must not contain NUL characters.")
ENCODING_MESSAGE = N_("Must be valid UTF-8 text.")

Errors = dict[Any, Any]


def text_problem(value: str) -> str | None:
    """Why this string cannot be stored (NUL, or not encodable as UTF-8), or None."""
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return ENCODING_MESSAGE
    return None


def text_errors(data: Any) -> Errors:
    """Every bad string in `data` (dict keys too), as marshmallow nests errors: by field name,
    list index and nested field; a bad top-level string is under `_schema`.

    Walks with a stack, not recursion, so any nesting the JSON decoder accepted is checked.
    """
    errors: Errors = {}
    stack: list[tuple[tuple[Any, ...], Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem:
                _put(errors, path, problem)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                problem = text_problem(key) if isinstance(key, str) else None
                if problem:
                    _put(errors, (*path, shown_name(key)), problem)
                else:
                    stack.append(((*path, key), item))
        elif isinstance(value, list | tuple):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return errors


def _put(errors: Errors, path: tuple[Any, ...], message: str) -> None:
    node = errors
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):  # a key already reported as bad itself
            return
        node = child
    node.setdefault(path[-1] if path else "_schema", []).append(message)


def shown_name(key: str) -> str:
    """A bad key as it can be named in an error: escapes instead of NUL and surrogates."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8").replace("\x00", "\\x00")


def scrub(text: str) -> str:
    """The text with each lone surrogate replaced by U+FFFD, so a bad stored row still shows."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def encode_utf8(text: str) -> bytes:
    """UTF-8 bytes of text that may come from a row stored before the checks existed."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        return scrub(text).encode("utf-8")


class TextSafeResponse(Response):
    """Pages and JSON are encoded with `encode_utf8`: one bad row never fails a whole page."""

    def set_data(self, value: bytes | str) -> None:
        super().set_data(encode_utf8(value) if isinstance(value, str) else value)


class TextSafeJSONProvider(DefaultJSONProvider):
    """JSON text that can always be encoded (answers, `tojson` in pages, the session cookie)."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        text = super().dumps(obj, **kwargs)
        if text.isascii():
            return text
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return scrub(text)
        return text


def refuse_unstorable_request_text() -> None:
    """422 naming each field that holds NUL or text UTF-8 cannot encode, before any view runs.

    One check for every form, query string, path part and JSON body, so pages that read
    `request.form` directly are covered as well as the API's schemas. Webhooks are left to
    their handler: nothing is read from them before their signature is checked, and it
    refuses unprintable text in every field it uses.
    """
    from shop.errors import Invalid

    if request.path.startswith("/webhooks/"):
        return
    errors: Errors = {}
    for values in (request.view_args or {}, request.args, _form()):
        if hasattr(values, "lists"):  # a MultiDict: a repeated name is checked as a list
            values = {key: vals[0] if len(vals) == 1 else vals for key, vals in values.lists()}
        errors.update(text_errors(values))
    if request.is_json:
        errors.update(text_errors(request.get_json(silent=True)))
    if errors:
        raise Invalid(fields=errors)


def _form() -> Mapping[str, Any]:
    if request.mimetype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        return request.form
    return {}


def init_app(app: Flask) -> None:
    """Install the safe encoders and the request check (first, before any other hook)."""
    app.response_class = TextSafeResponse
    app.json = TextSafeJSONProvider(app)
    app.before_request(refuse_unstorable_request_text)
