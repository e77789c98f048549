"""A small local stand-in of the Stripe API, for the real `stripe` library via STRIPE_API_BASE.

Implements what Farmlive calls: POST /v1/payment_intents (honouring Idempotency-Key),
GET /v1/payment_intents/<id>, POST /v1/payment_intents/<id>/cancel (refused, as Stripe does,
once the intent succeeded or is processing) and POST /v1/refunds (whole or partial, against the
intent's charge), with switches to simulate an outage (500s, or a closed port via
`unreachable_url`) and 429s. Refunds made "in the dashboard" (`dashboard_refund`) return the
charge for a `charge.refunded` event; `refund_outcome` makes new refunds `pending`, and
`settle_refund` ends one later (for `refund.updated` / `refund.failed` events). Also signs
webhook deliveries the way Stripe does.
Reusable outside the order tests (benchmarks):

    with StripeStub() as stub:
        app.config["STRIPE_API_BASE"] = stub.url
"""

from __future__ import annotations

import json
import secrets
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import stripe


def _unflatten(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (`metadata[order_id]=7`) back into nested dicts."""
    out: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class StripeStub:
    """In-memory PaymentIntents and refunds served over HTTP on 127.0.0.1."""

    def __init__(self) -> None:
        self.intents: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.charges: dict[str, dict] = {}  # by intent id, once the intent succeeded
        self.cancels: list[tuple[str, str]] = []  # (intent id, "canceled" | "refused")
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request seen
        self.mode = "ok"  # "ok" | "down" (every request answers 500)
        self.rate_limited = 0  # answer this many next requests with 429
        self.refund_outcome = "succeeded"  # the status new refunds get ("pending" as banks do)
        self.on_request = None  # called with (method, path) while a request is being served
        self._idempotent: dict[str, tuple[int, dict]] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle -----------------------------------------------------------------------
    def start(self) -> StripeStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> StripeStub:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @staticmethod
    def unreachable_url() -> str:
        """A local address nobody listens on: connection refused, like Stripe being down."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        return f"http://127.0.0.1:{port}"

    # --- what tests do to intents --------------------------------------------------------
    def set_status(self, intent_id: str, status: str) -> dict:
        """Move an intent as the buyer's bank would (succeeded, requires_payment_method...)."""
        with self._lock:
            intent = self.intents[intent_id]
            intent["status"] = status
            if status == "succeeded":
                intent["amount_received"] = intent["amount"]
                intent["latest_charge"] = self._charge(intent)["id"]
            return dict(intent)

    def dashboard_refund(self, intent_id: str, amount: int | None = None) -> dict:
        """Refund (part of) a payment as someone in Stripe's dashboard would; returns the charge."""
        with self._lock:
            status, answer = self._refund(self.intents[intent_id], amount)
            assert status == 200, answer
            return self.charge_of(intent_id)

    def charge_of(self, intent_id: str) -> dict:
        """The intent's charge as a `charge.*` event carries it (refunded total so far)."""
        return dict(self.charges[intent_id])

    def created_intents(self) -> int:
        return sum(1 for m, p in self.requests if m == "POST" and p == "/v1/payment_intents")

    # --- HTTP ------------------------------------------------------------------------------
    def _answer(self, method: str, path: str, headers, body: str) -> tuple[int, dict]:
        if self.on_request is not None:
            self.on_request(method, path)
        with self._lock:
            self.requests.append((method, path))
            if self.mode == "down":
                return 500, {"error": {"type": "api_error", "message": "stub outage"}}
            if self.rate_limited > 0:
                self.rate_limited -= 1
                return 429, {
                    "error": {
                        "type": "invalid_request_error",
                        "code": "rate_limit",
                        "message": "Too many requests",
                    }
                }
            key = headers.get("Idempotency-Key")
            if method == "POST" and key and (method, path, key) in self._idempotent:
                return self._idempotent[(method, path, key)]
            params = _unflatten(parse_qsl(body, keep_blank_values=True))
            answer = self._route(method, path, params)
            if method == "POST" and key and answer[0] < 500:
                self._idempotent[(method, path, key)] = answer
            return answer

    def _route(self, method: str, path: str, params: dict) -> tuple[int, dict]:
        parts = path.strip("/").split("/")
        if method == "POST" and parts == ["v1", "payment_intents"]:
            intent_id = "pi_" + secrets.token_hex(8)
            intent = {
                "id": intent_id,
                "object": "payment_intent",
                "amount": int(params["amount"]),
                "amount_received": 0,
                "currency": params["currency"],
                "status": "requires_payment_method",
                "client_secret": f"{intent_id}_secret_{secrets.token_hex(6)}",
                "metadata": params.get("metadata", {}),
                "automatic_payment_methods": {"enabled": True},
                "created": int(time.time()),
                "livemode": False,
            }
            self.intents[intent_id] = intent
            return 200, dict(intent)
        if len(parts) >= 3 and parts[:2] == ["v1", "payment_intents"]:
            intent = self.intents.get(parts[2])
            if intent is None:
                return 404, {
                    "error": {"type": "invalid_request_error", "message": "No such payment_intent"}
                }
            if method == "POST" and parts[3:] == ["cancel"]:
                return self._cancel(intent)
            return 200, dict(intent)
        if method == "POST" and parts == ["v1", "refunds"]:
            intent = self.intents.get(params.get("payment_intent", ""))
            if intent is None or intent["status"] != "succeeded":
                return _refused("This PaymentIntent has no charge to refund")
            return self._refund(intent, int(params["amount"]) if "amount" in params else None)
        return 404, {"error": {"type": "invalid_request_error", "message": "Unknown path"}}

    def _cancel(self, intent: dict) -> tuple[int, dict]:
        """Stripe cancels only intents still waiting for a payment; it reports the state else."""
        if intent["status"] in ("succeeded", "processing", "canceled"):
            self.cancels.append((intent["id"], "refused"))
            return 400, {
                "error": {
                    "type": "invalid_request_error",
                    "code": "payment_intent_unexpected_state",
                    "message": "You cannot cancel this PaymentIntent because it has a status "
                    f"of {intent['status']}.",
                    "payment_intent": dict(intent),
                }
            }
        intent["status"] = "canceled"
        self.cancels.append((intent["id"], "canceled"))
        return 200, dict(intent)

    def _charge(self, intent: dict) -> dict:
        return self.charges.setdefault(
            intent["id"],
            {
                "id": "ch_" + secrets.token_hex(8),
                "object": "charge",
                "payment_intent": intent["id"],
                "amount": intent["amount"],
                "amount_refunded": 0,
                "refunded": False,
                "currency": intent["currency"],
                "metadata": dict(intent["metadata"]),
            },
        )

    def _refund(self, intent: dict, amount: int | None) -> tuple[int, dict]:
        """Refund `amount` (default: all that is left) of the intent's charge, as Stripe does."""
        charge = self._charge(intent)
        left = charge["amount"] - charge["amount_refunded"]
        amount = left if amount is None else amount
        if left == 0:
            return _refused("Charge has already been refunded.", "charge_already_refunded")
        if not 0 < amount <= left:
            return _refused("Refund amount is greater than unrefunded amount on charge.")
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] == charge["amount"]
        refund = {
            "id": "re_" + secrets.token_hex(8),
            "object": "refund",
            "payment_intent": intent["id"],
            "charge": charge["id"],
            "amount": amount,
            "status": self.refund_outcome,
        }
        self.refunds.append(refund)
        return 200, dict(refund)

    def settle_refund(self, refund_id: str, status: str) -> dict:
        """A pending refund ends (`succeeded`, `failed`, `canceled`); returns it for an event."""
        with self._lock:
            refund = next(r for r in self.refunds if r["id"] == refund_id)
            refund["status"] = status
            if status in ("failed", "canceled"):
                charge = self.charges[refund["payment_intent"]]
                charge["amount_refunded"] -= refund["amount"]
                charge["refunded"] = False
            return dict(refund)

    def _handler(self):
        stub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path = self.path.split("?", 1)[0]
                status, data = stub._answer(method, path, self.headers, body)
                raw = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.send_header("Request-Id", "req_" + secrets.token_hex(6))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                self._serve("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._serve("POST")

            def log_message(self, *args) -> None:
                pass

        return Handler


def _refused(message: str, code: str | None = None) -> tuple[int, dict]:
    error = {"type": "invalid_request_error", "message": message}
    if code:
        error["code"] = code
    return 400, {"error": error}


def event(kind: str, intent: dict, *, event_id: str | None = None) -> dict:
    """A Stripe event envelope around an object snapshot (an intent, or a charge)."""
    return {
        "id": event_id or "evt_" + secrets.token_hex(8),
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "data": {"object": intent},
        "livemode": False,
    }


def signed(payload: dict, secret: str, *, timestamp: int | None = None) -> tuple[str, dict]:
    """Body and headers of a delivery signed as Stripe signs it (t=...,v1=HMAC-SHA256)."""
    body = json.dumps(payload)
    header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=timestamp)
    return body, {"Stripe-Signature": header, "Content-Type": "application/json"}
