"""Named failures of live sessions; `shop.errors` renders them in the API.md shape."""

from __future__ import annotations

from orders.errors import LimitExceeded  # noqa: F401 - enforced by the order service
from shop.errors import Conflict, DomainError, Forbidden, Invalid, NotFound
from shop.i18n import N_


class SessionNotFound(NotFound):
    code, message = "live_session_not_found", "No such live session."


class MessageNotFound(NotFound):
    code, message = "message_not_found", "No such message."


class NotHost(Forbidden):
    code, message = "not_host", "Only this session's host or an admin can do this."


class NotLive(Conflict):
    code, message = "not_live", "The live session is not live."


class NotPinned(Conflict):
    code, message = "not_pinned", "This product is not pinned in the live session right now."


class InvalidSessionTransition(Conflict):
    code, message = "invalid_transition", "The session cannot do that in its current state."


class IdempotencyKeyReused(Conflict):
    code, message = "idempotency_key_reused", "This Idempotency-Key was used for another request."


class IdempotencyKeyRequired(DomainError):
    status, code = 400, "idempotency_key_required"
    message = "Send an Idempotency-Key header (one per tap)."


class ChatClosed(Conflict):
    code, message = "chat_closed", "Chat is closed: the session has ended."


class TooManyMessages(DomainError):
    status, code, message = 429, "too_many_messages", "You are sending messages too fast."


class TooManyRequests(DomainError):
    """Too many live-page sockets or joins from one client address (live.throttle)."""

    status, code = 429, "too_many_requests"
    message = N_("Too many requests; wait a moment and try again.")


class InvalidPin(Invalid):
    code = "invalid_pin"
