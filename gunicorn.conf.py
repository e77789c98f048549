"""gunicorn settings read automatically from the project root: background work per worker.

Production runs one gunicorn per port (deploy/systemd/farmlive@.service), each with ONE gevent
worker, as Flask-SocketIO requires; nginx spreads clients over the ports with sticky sessions and
Redis joins the processes. Command-line flags override what is set here.
"""

from __future__ import annotations

import os

import gunicorn.http.wsgi

# No `Server: gunicorn` banner: gunicorn writes this module attribute into every response it
# makes (there is no setting for it). Behind nginx clients see nginx's header instead, whose
# version `server_tokens off` hides (deploy/nginx/farmlive.conf).
gunicorn.http.wsgi.SERVER = "farmlive"

# The gevent worker monkey-patches the standard library before it loads the app, so psycopg 3
# and redis cooperate with it; Socket.IO must then use the gevent async mode too.
os.environ.setdefault("SOCKETIO_ASYNC_MODE", "gevent")

worker_class = "gevent"
workers = 1  # Flask-SocketIO keeps session state in the process: never more than one per port
bind = os.environ.get("FARMLIVE_BIND", "127.0.0.1:8000")
# Concurrent connections per process (viewers hold one WebSocket each); gevent's default is 1000.
worker_connections = int(os.environ.get("GUNICORN_WORKER_CONNECTIONS", "4000"))
timeout = 30
graceful_timeout = 20
keepalive = 5
# Several gunicorns run on one host (one per port): the default shared control socket would clash.
control_socket_disable = True
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None  # "-" for stdout; off by default


def post_worker_init(worker) -> None:
    """Fill the database pool and make the dummy password hash (so even the first login for an
    unknown email costs one check), then start the expiry task in each worker (SKIP LOCKED
    keeps concurrent runners safe)."""
    from orders.tasks import start_background_tasks
    from shop.accounts import warm_dummy_hash
    from shop.database import warm_pool

    warm_pool(worker.wsgi)
    warm_dummy_hash(worker.wsgi)
    start_background_tasks(worker.wsgi)
