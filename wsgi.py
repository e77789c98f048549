"""Entry point: `app` for gunicorn and the flask CLI; `python wsgi.py` serves HTTP and Socket.IO."""

from __future__ import annotations

from shop import create_app
from shop.extensions import socketio

app = create_app()

if __name__ == "__main__":
    from orders.tasks import start_background_tasks
    from shop.security import QuietRequestHandler

    start_background_tasks(app)
    quiet = {"request_handler": QuietRequestHandler}  # no `Server: Werkzeug/...` banner
    socketio.run(
        app,
        host=app.config["HOST"],
        port=app.config["PORT"],
        allow_unsafe_werkzeug=True,
        use_reloader=False,
        **(quiet if app.config["SOCKETIO_ASYNC_MODE"] == "threading" else {}),
    )
