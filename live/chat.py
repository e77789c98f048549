"""Chat and questions: logged-in viewers write, the host answers or hides, everyone sees it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload

from live import broadcast, rooms, throttle
from live.errors import ChatClosed, MessageNotFound, TooManyMessages
from live.models import Message, QuestionVote, SessionStatus
from live.services import check_host, get_session
from shop.database import begin_write
from shop.errors import Invalid
from shop.extensions import db
from shop.models import User, utcnow
from shop.text import text_problem

Clock = Callable[[], datetime]
KINDS = ("chat", "question")
MAX_LENGTH = 500


def message_data(message: Message) -> dict:
    """The `message` event of API.md (plus the host's flags)."""
    return {
        "id": message.id,
        "session_id": message.session_id,
        "user_name": message.user.name if message.user else "",
        "body": message.body,
        "kind": message.kind,
        "created_at": message.created_at.isoformat(),
        "answered": message.answered,
        "votes": message.votes,
    }


def post_message(
    user: User, session_id: int, *, body: str, kind: str = "chat", clock: Clock = utcnow
) -> Message:
    """Save a chat line or question and send it to the room; one per user per rate window."""
    text = (body or "").strip()
    if kind not in KINDS:
        raise Invalid(fields={"kind": ["Must be chat or question."]})
    if not text or len(text) > MAX_LENGTH:
        raise Invalid(fields={"body": [f"Between 1 and {MAX_LENGTH} characters."]})
    problem = text_problem(text)  # NUL, a lone surrogate: the database cannot store them
    if problem:
        raise Invalid(fields={"body": [problem]})
    live = get_session(session_id)
    if live.status == SessionStatus.ENDED:
        raise ChatClosed()
    # One atomic hit shared by the API and the socket, before anything is stored: of ten
    # messages sent at once exactly one passes.
    if not throttle.allow_chat(user.id):
        raise TooManyMessages()
    begin_write()
    message = Message(
        session_id=session_id, user_id=user.id, kind=kind, body=text, created_at=clock()
    )
    db.session.add(message)
    db.session.commit()
    broadcast.emit("message", message_data(message), session_id)
    return message


def list_messages(session_id: int, *, kind: str | None = None, limit: int = 200) -> list[Message]:
    """The latest visible messages, newest last."""
    get_session(session_id)
    query = select(Message).where(Message.session_id == session_id, Message.hidden.is_(False))
    if kind:
        query = query.where(Message.kind == kind)
    query = query.options(joinedload(Message.user))  # the author's name, in the same query
    latest = list(db.session.scalars(query.order_by(Message.id.desc()).limit(limit)))
    return latest[::-1]


def history_json(session_id: int, *, kind: str | None = None) -> bytes:
    """`list_messages` as the API answers it (JSON), from this process's histories, kept
    current by the chat news (live.rooms.Histories): what every arriving viewer's page loads,
    read from the database once instead of once per viewer."""
    from live.schemas import MessageListSchema

    rooms.rooms().get(session_id)  # SessionNotFound, from memory

    def read() -> list[dict]:
        try:
            items = list_messages(session_id, kind=kind)
            return MessageListSchema().dump({"items": items})["items"]
        finally:
            db.session.rollback()  # a read: the connection goes back before the answer is sent

    return rooms.histories().get(session_id, kind, read)


def get_message(session_id: int, message_id: int) -> Message:
    message = db.session.get(Message, message_id)
    if message is None or message.session_id != session_id:
        raise MessageNotFound()
    return message


def _host_change(user: User, session_id: int, message_id: int, **values) -> Message:
    live = get_session(session_id)
    check_host(user, live)
    begin_write()
    message = db.session.get(Message, message_id)
    if message is None or message.session_id != session_id:
        db.session.rollback()
        raise MessageNotFound()
    for key, value in values.items():
        setattr(message, key, value)
    db.session.commit()
    _announce_update(message)
    return message


def _announce_update(message: Message) -> None:
    broadcast.emit(
        "message_update",
        {
            "session_id": message.session_id,
            "id": message.id,
            "hidden": message.hidden,
            "answered": message.answered,
            "votes": message.votes,
        },
        message.session_id,
    )


def hide_message(user: User, session_id: int, message_id: int) -> Message:
    """Hide an abusive message for everyone (host or admin)."""
    return _host_change(user, session_id, message_id, hidden=True)


def mark_answered(user: User, session_id: int, message_id: int, answered: bool = True) -> Message:
    return _host_change(user, session_id, message_id, answered=answered)


def vote(user: User, session_id: int, message_id: int) -> Message:
    """ "Me too" on a question: once per viewer; the host sorts questions by it."""
    begin_write()
    message = db.session.get(Message, message_id)
    if message is None or message.session_id != session_id or message.hidden:
        db.session.rollback()
        raise MessageNotFound()
    if message.kind != "question":
        db.session.rollback()
        raise Invalid(fields={"message_id": ["Only questions take votes."]})
    savepoint = db.session.begin_nested()
    try:
        db.session.execute(insert(QuestionVote).values(message_id=message_id, user_id=user.id))
        savepoint.commit()
    except IntegrityError:
        savepoint.rollback()
        db.session.commit()
        return message
    db.session.execute(
        update(Message).where(Message.id == message_id).values(votes=Message.votes + 1)
    )
    db.session.commit()
    _announce_update(message)
    return message


def questions_for_host(session_id: int, *, order: str = "newest") -> list[Message]:
    """Visible questions, newest first or most-asked first."""
    query = select(Message).where(
        Message.session_id == session_id, Message.kind == "question", Message.hidden.is_(False)
    )
    if order == "votes":
        query = query.order_by(Message.votes.desc(), Message.id.desc())
    else:
        query = query.order_by(Message.id.desc())
    return list(db.session.scalars(query.limit(200)))
