"""Socket.IO namespace /coop: a room per cooperative, so its dashboard sees new shipments live.

Coop members join `coop-<cooperative_id>`; admins join `coop-all`, which gets every shipment.
News is sent from `shop.signals.shipment_changed`, which the services send after their commit.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from flask_login import current_user

from orders.models import Shipment
from shop import signals
from shop.errors import NotFound, discard_session
from shop.extensions import db, socketio
from shop.i18n import N_
from shop.models import Role
from shop.sockets import socket_event

NAMESPACE = "/coop"
ALL_ROOM = "coop-all"
log = logging.getLogger(__name__)


def room_for(cooperative_id: int) -> str:
    return f"coop-{cooperative_id}"


@socketio.on("connect", namespace=NAMESPACE)
def _connect(auth: Any = None) -> bool:
    """Only cooperative members and admins may listen (login_required does not work here)."""
    from flask_socketio import join_room

    try:
        if not current_user.is_authenticated:
            return False
        if current_user.role == Role.ADMIN:
            join_room(ALL_ROOM)
        elif current_user.role == Role.COOP and current_user.cooperative_id:
            join_room(room_for(current_user.cooperative_id))
        else:
            return False
        return True
    finally:
        discard_session()  # socket handlers get no Flask-SQLAlchemy teardown


@socketio.on("*", namespace=NAMESPACE)
@socket_event(payload=False)
def _any_event(event: str, *_args: Any) -> dict[str, Any]:
    """The dashboard only listens: any event a client sends is answered, never left hanging."""
    raise NotFound(N_("No such event."))


def _on_shipment_changed(app: Flask, *, shipment_id: int, cooperative_id: int, **_) -> None:
    """Tell the cooperative's dashboards (and admins') about a shipment, after its commit."""
    from orders.fulfilment.schemas import CoopShipmentSchema

    try:
        shipment = db.session.get(Shipment, shipment_id)
        if shipment is None:
            return
        payload = CoopShipmentSchema().dump(shipment)
        socketio.emit("shipment", payload, to=room_for(cooperative_id), namespace=NAMESPACE)
        socketio.emit("shipment", payload, to=ALL_ROOM, namespace=NAMESPACE)
    except Exception:  # the change is committed; a lost notice must not fail the request
        log.exception("could not announce shipment %s", shipment_id)


signals.shipment_changed.connect(_on_shipment_changed)
