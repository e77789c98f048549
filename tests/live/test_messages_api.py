"""Chat and questions over HTTP: newest last, hidden ones gone, host moderation, votes."""

from __future__ import annotations


def _post(client, session_id, body, kind="chat"):
    return client.post(f"/live-sessions/{session_id}/messages", {"body": body, "kind": kind})


def test_messages_newest_last_and_hidden_left_out(live, factory, login_as, api, app):
    app.config["CHAT_RATE_LIMIT_SECONDS"] = 0
    viewer = login_as(factory.user("buyer", name="李"))
    ids = [_post(viewer, live.session_id, text).get_json()["id"] for text in ("一", "二", "三")]

    hidden = live.host_api.patch(
        f"/live-sessions/{live.session_id}/messages/{ids[1]}", {"hidden": True}
    )
    assert hidden.status_code == 200

    items = api.get(f"/live-sessions/{live.session_id}/messages").get_json()["items"]
    assert [m["body"] for m in items] == ["一", "三"]
    assert items[0]["user_name"] == "李" and items[0]["kind"] == "chat"


def test_only_the_host_moderates(live, factory, login_as):
    viewer = login_as(factory.user("buyer"))
    message_id = _post(viewer, live.session_id, "骂人的话").get_json()["id"]
    path = f"/live-sessions/{live.session_id}/messages/{message_id}"

    assert viewer.patch(path, {"hidden": True}).status_code == 403
    assert login_as(factory.user("host")).patch(path, {"hidden": True}).status_code == 403
    assert live.host_api.patch(path, {"hidden": True}).status_code == 200


def test_questions_are_answered_and_sorted_by_votes(live, factory, login_as, app):
    app.config["CHAT_RATE_LIMIT_SECONDS"] = 0
    asker = login_as(factory.user("buyer"))
    first = _post(asker, live.session_id, "几天到货？", "question").get_json()["id"]
    second = _post(asker, live.session_id, "包邮吗？", "question").get_json()["id"]
    for _ in range(2):
        voter = login_as(factory.user("buyer"))
        assert (
            voter.post(f"/live-sessions/{live.session_id}/messages/{second}/vote").status_code
            == 200
        )
        voter.post(f"/live-sessions/{live.session_id}/messages/{second}/vote")  # counted once

    path = f"/live-sessions/{live.session_id}/messages"
    ranked = live.host_api.get(path + "?kind=question&order=votes").get_json()["items"]
    assert [(m["id"], m["votes"]) for m in ranked] == [(second, 2), (first, 0)]

    answered = live.host_api.patch(f"{path}/{first}", {"answered": True}).get_json()
    assert answered["answered"] is True


def test_message_rules(live, factory, login_as, api):
    viewer = login_as(factory.user("buyer"))

    assert _post(api, live.session_id, "hi").status_code == 401
    assert _post(viewer, live.session_id, "x" * 501).status_code == 422
    assert _post(viewer, live.session_id, "hello").status_code == 201
    too_fast = _post(viewer, live.session_id, "again")
    assert (
        too_fast.status_code == 429 and too_fast.get_json()["error"]["code"] == "too_many_messages"
    )
