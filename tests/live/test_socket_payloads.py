"""Every /live event answers a payload it cannot use with an error ack in API.md's shape
(`bad_request` for no object, `invalid` naming the fields), never an exception."""

from __future__ import annotations

import pytest

BAD = [
    pytest.param((None,), "bad_request", id="none"),
    pytest.param(([],), "bad_request", id="list"),
    pytest.param(("x",), "bad_request", id="string"),
    pytest.param((), "bad_request", id="no-argument"),
    pytest.param(({"session_id": 1}, 2), "bad_request", id="two-arguments"),
    pytest.param(({},), "invalid", id="empty"),
    pytest.param(({"session_id": "1", "body": "hi"},), "invalid", id="id-as-text"),
    pytest.param(({"session_id": True, "body": "hi"},), "invalid", id="id-as-bool"),
    pytest.param(({"session_id": 1.5, "body": "hi"},), "invalid", id="id-as-float"),
    pytest.param(({"session_id": 2**70, "body": "hi"},), "invalid", id="id-too-large"),
    pytest.param(({"session_id": -1, "body": "hi"},), "invalid", id="id-negative"),
]


@pytest.fixture
def viewer(live, socket_client, factory, login_as):
    """A logged-in viewer's socket (so `message` gets past the login check)."""
    return socket_client(login_as(factory.user("buyer")))


def _send(sio, event: str, args: tuple):
    return sio.emit(event, *args, namespace="/live", callback=True)


def _assert_error(ack, code: str) -> dict:
    assert isinstance(ack, dict) and ack.get("ok") is False, ack
    error = ack["error"]
    assert error["code"] == code, ack
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["fields"], dict)
    return error


@pytest.mark.parametrize("event", ["join", "leave", "message"])
@pytest.mark.parametrize(("args", "code"), BAD)
def test_a_bad_payload_gets_an_error_ack(viewer, event, args, code):
    # when an event arrives with a payload it cannot use
    ack = _send(viewer, event, args)

    # then it is answered with an error, and the socket goes on working
    error = _assert_error(ack, code)
    if code == "invalid":
        assert "session_id" in error["fields"]
    assert viewer.is_connected("/live")


@pytest.mark.parametrize("event", ["join", "leave", "message"])
def test_text_that_is_not_utf8_is_invalid_naming_the_field(live, viewer, event):
    ack = _send(viewer, event, ({"session_id": live.session_id, "body": "a\ud800"},))

    assert _assert_error(ack, "invalid")["fields"] == {"body": ["Must be valid UTF-8 text."]}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"body": "a\x00b"}, "body"),
        ({"body": None}, "body"),
        ({"body": ["hi"]}, "body"),
        ({}, "body"),
        ({"body": "hi", "kind": "shout"}, "kind"),
        ({"body": "hi", "kind": "a\ud800"}, "kind"),
    ],
)
def test_a_message_with_bad_fields_is_invalid_and_not_stored(live, viewer, app, payload, field):
    from live.models import Message
    from shop.extensions import db

    ack = _send(viewer, "message", ({"session_id": live.session_id, **payload},))

    assert field in _assert_error(ack, "invalid")["fields"]
    with app.app_context():
        assert db.session.query(Message).count() == 0


def test_a_join_with_a_bad_console_flag_is_invalid(live, viewer):
    ack = _send(viewer, "join", ({"session_id": live.session_id, "console": "maybe"},))

    assert "console" in _assert_error(ack, "invalid")["fields"]


def test_the_old_viewer_key_is_still_accepted(live, viewer):
    for key in ("abc", 12, None, {"x": 1}):
        ack = _send(viewer, "join", ({"session_id": live.session_id, "viewer_key": key},))
        assert ack["ok"] is True


def test_an_anonymous_message_is_refused_after_its_payload_is_read(live, socket_client):
    anonymous = socket_client()

    assert _send(anonymous, "message", (None,))["error"]["code"] == "bad_request"
    ack = _send(anonymous, "message", ({"session_id": live.session_id, "body": "hi"},))
    assert ack["error"]["code"] == "unauthorized"
