"""Settings from the environment (12-factor), one class per environment.

A `.env` file next to this one is read when present. Nothing secret has a default in code:
the default SECRET_KEY is generated once per install and kept in `instance/`.
"""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

load_dotenv(BASE_DIR / ".env")


def _install_secret_key() -> str:
    """Return the per-install secret key, creating it on first use."""
    INSTANCE_DIR.mkdir(exist_ok=True)
    path = INSTANCE_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw not in (None, "") else default


class Config:
    """Production-ready defaults; every value can be overridden from the environment."""

    SECRET_KEY = os.environ.get("SECRET_KEY") or _install_secret_key()
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or (
        f"sqlite:///{INSTANCE_DIR / 'farmlive.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    # PostgreSQL pool per server process (README "Production", connection pool sizing): keep
    # processes x (DB_POOL_SIZE + DB_MAX_OVERFLOW) + 10 below the server's max_connections (100);
    # a request that finds no free connection waits DB_POOL_TIMEOUT seconds, then gets a 503.
    # The pool is filled when a worker starts and kept: no connection is opened or closed under
    # load (overflow connections would be, at every burst).
    DB_POOL_SIZE = int(os.environ.get("DB_POOL_SIZE", "20"))
    DB_MAX_OVERFLOW = int(os.environ.get("DB_MAX_OVERFLOW", "0"))
    DB_POOL_TIMEOUT = _env_float("DB_POOL_TIMEOUT", 5.0)
    # Budgets of their own (shop/budgets.py), so a storm of viewers joining cannot take the
    # connections checkout and the expiry pass need: socket events, and background work. Each
    # process holds DB_POOL_SIZE + these. 0: that work shares the requests' pool.
    DB_SOCKET_POOL_SIZE = int(os.environ.get("DB_SOCKET_POOL_SIZE", "5"))
    DB_BACKGROUND_POOL_SIZE = int(os.environ.get("DB_BACKGROUND_POOL_SIZE", "3"))
    # PostgreSQL that goes silent (a cable, a firewall, a frozen host) must not hold connections
    # until TCP gives up (15 minutes and more): sent data unacknowledged this long, or an idle
    # connection whose keepalive probes go unanswered (idle 10 s, every 5 s, 3 tries), drops the
    # connection and the request gets a 503. Seconds; 0 leaves the system's default.
    DB_TCP_USER_TIMEOUT_SECONDS = _env_float("DB_TCP_USER_TIMEOUT_SECONDS", 10.0)
    DB_KEEPALIVES_IDLE_SECONDS = int(os.environ.get("DB_KEEPALIVES_IDLE_SECONDS", "10"))
    # A statement running longer than this is cancelled by PostgreSQL (503, retry), and a
    # transaction left idle longer than the second one is ended: a bug or a stuck worker can
    # never hold row locks for long. Seconds; 0 turns either off. Migrations run without them.
    DB_STATEMENT_TIMEOUT_SECONDS = _env_float("DB_STATEMENT_TIMEOUT_SECONDS", 30.0)
    DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS = _env_float(
        "DB_IDLE_IN_TRANSACTION_TIMEOUT_SECONDS", 60.0
    )

    REDIS_URL = os.environ.get("REDIS_URL") or None
    # Every Redis call (Socket.IO news, viewer counts, chat, join and login limits) gives up
    # after this many seconds; that part then goes on without Redis (README "Outages: what a
    # user sees") and tries Redis again REDIS_CHECK_SECONDS later.
    REDIS_TIMEOUT_SECONDS = _env_float("REDIS_TIMEOUT_SECONDS", 1.0)
    # Connections each Redis user in a process (viewer counts, chat and join limits, Socket.IO
    # news) may hold; a call that finds none free waits up to REDIS_TIMEOUT_SECONDS for one.
    REDIS_MAX_CONNECTIONS = int(os.environ.get("REDIS_MAX_CONNECTIONS", "50"))
    # The Socket.IO listener pings Redis on its subscription after this many quiet seconds and
    # reconnects when no answer comes within REDIS_TIMEOUT_SECONDS; /healthz is 503
    # (socketio_listener) once it has heard nothing for twice this plus the timeout.
    REDIS_CHECK_SECONDS = _env_float("REDIS_CHECK_SECONDS", 5.0)
    SOCKETIO_ASYNC_MODE = os.environ.get("SOCKETIO_ASYNC_MODE", "threading")
    SOCKETIO_CHANNEL = os.environ.get("SOCKETIO_CHANNEL", "farmlive")
    # With Redis: a server process that dies without disconnecting its viewers (killed, out of
    # memory) stops vouching for them; they leave the viewer count this many seconds later.
    VIEWER_STALE_SECONDS = _env_float("VIEWER_STALE_SECONDS", 30.0)
    # Socket connections are accepted from these origins only; empty means the site's own.
    SOCKETIO_ALLOWED_ORIGINS = [
        o.strip() for o in os.environ.get("SOCKETIO_ALLOWED_ORIGINS", "").split(",") if o.strip()
    ]

    STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY") or None
    STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY") or None
    STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET") or None
    STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE") or None
    STRIPE_INTENTS_PER_SECOND = _env_float("STRIPE_INTENTS_PER_SECOND", 25.0)
    PAYMENT_PROVIDER = os.environ.get("PAYMENT_PROVIDER") or (
        "stripe" if os.environ.get("STRIPE_SECRET_KEY") else "demo"
    )

    CURRENCY = os.environ.get("CURRENCY", "CNY")
    RESERVATION_MINUTES = _env_float("RESERVATION_MINUTES", 15.0)
    EXPIRY_INTERVAL_SECONDS = _env_float("EXPIRY_INTERVAL_SECONDS", 5.0)
    RUN_BACKGROUND_TASKS = os.environ.get("RUN_BACKGROUND_TASKS", "1") == "1"
    AUTO_DELIVER_DAYS = _env_float("AUTO_DELIVER_DAYS", 15.0)
    TIMEZONE = os.environ.get("TIMEZONE", "Asia/Shanghai")
    # PostgreSQL work_mem for a report's own read transaction, so its sorts stay in memory.
    REPORTS_WORK_MEM = os.environ.get("REPORTS_WORK_MEM", "64MB")

    # Behind nginx: trust this many proxies' X-Forwarded-For/-Proto (client address for rate
    # limits, https for cookies). 0 when the app is reached directly.
    TRUSTED_PROXIES = int(os.environ.get("TRUSTED_PROXIES", "0"))

    HOST = os.environ.get("HOST", "127.0.0.1")
    PORT = int(os.environ.get("PORT", "5000"))

    UPLOAD_FOLDER = os.environ.get("UPLOAD_FOLDER") or str(INSTANCE_DIR / "uploads")
    MAX_PHOTO_BYTES = int(os.environ.get("MAX_PHOTO_BYTES", str(5 * 1024 * 1024)))
    # Photos decoded at once per process (each may take ~100 MB and a second of CPU); more wait.
    MAX_PHOTO_DECODES = int(os.environ.get("MAX_PHOTO_DECODES", "2"))
    MAX_CONTENT_LENGTH = MAX_PHOTO_BYTES + 64 * 1024

    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI") or (
        os.environ.get("REDIS_URL") or "memory://"
    )
    RATELIMIT_ENABLED = os.environ.get("RATELIMIT_ENABLED", "1") == "1"
    # When the rate-limit storage (Redis) fails, Flask-Limiter counts in this process's memory
    # (logged) and checks the storage again now and then; any other limiter error lets the
    # request through (logged) instead of failing it: logging in never needs Redis.
    RATELIMIT_IN_MEMORY_FALLBACK_ENABLED = (
        os.environ.get("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", "1") == "1"
    )
    RATELIMIT_SWALLOW_ERRORS = os.environ.get("RATELIMIT_SWALLOW_ERRORS", "1") == "1"
    # Log-in (and register) attempts per client address, over the login page and the API
    # together. Generous: at a stream's start hundreds of buyers behind one carrier NAT log in
    # at once. LOGIN_RATE_LIMIT is its old name, still read when the new one is unset.
    LOGIN_RATE_LIMIT_PER_ADDRESS = (
        os.environ.get("LOGIN_RATE_LIMIT_PER_ADDRESS")
        or os.environ.get("LOGIN_RATE_LIMIT")
        or "300 per minute"
    )
    # Failed log-ins (wrong password, unknown email, wrong current password) per account,
    # keyed by the normalised email from any address; the longer windows are the back-off.
    LOGIN_RATE_LIMIT_PER_ACCOUNT = os.environ.get(
        "LOGIN_RATE_LIMIT_PER_ACCOUNT", "5 per minute; 20 per hour; 50 per day"
    )
    RATELIMIT_HEADERS_ENABLED = True  # a 429 says when to retry (Retry-After)
    # Stock news to viewers is coalesced: at most one `stock` event per variant per interval.
    STOCK_BROADCAST_INTERVAL = _env_float("STOCK_BROADCAST_INTERVAL", 0.5)
    # A room's viewer count is sent at most once per this many seconds: 1,200 viewers arriving
    # get one count per interval, not one per arrival (every event goes to every viewer).
    VIEWER_COUNT_INTERVAL = _env_float("VIEWER_COUNT_INTERVAL", 2.0)
    # After a live checkout found a variant sold out, this process refuses further taps on it
    # without a transaction for this long (a restock in this process ends it at once; one in
    # another process within this time). 0 turns it off.
    SOLD_OUT_MEMO_SECONDS = _env_float("SOLD_OUT_MEMO_SECONDS", 1.0)
    # A buyer holds at most this many unpaid orders (each holds stock until it expires).
    MAX_UNPAID_ORDERS = int(os.environ.get("MAX_UNPAID_ORDERS", "3"))
    # Stripe calls give up after these (then a retry or two): a buyer in a live sale is waiting.
    STRIPE_CONNECT_TIMEOUT_SECONDS = _env_float("STRIPE_CONNECT_TIMEOUT_SECONDS", 3.0)
    STRIPE_READ_TIMEOUT_SECONDS = _env_float("STRIPE_READ_TIMEOUT_SECONDS", 10.0)
    # A webhook delivery may take this long to apply its event before a redelivery may (until
    # then a redelivery answers 409, so Stripe retries later); a claim left unapplied longer
    # (its process died) is shown in /healthz and applied by the background loop.
    WEBHOOK_LEASE_SECONDS = _env_float("WEBHOOK_LEASE_SECONDS", 60.0)
    # One chat message or question per user per this many seconds (rounded up to whole
    # seconds), over the API and the socket together, in the rate-limit storage. 0: no limit.
    CHAT_RATE_LIMIT_SECONDS = _env_float("CHAT_RATE_LIMIT_SECONDS", 2.0)
    # Live-page sockets per client address in one server process, and `join`s per client
    # address (a `limits` string, shared through the rate-limit storage). Generous: a carrier
    # NAT puts hundreds of phones behind one address. 0 / empty: no bound; RATELIMIT_ENABLED=0
    # turns both off, as it does the login limit.
    SOCKET_CONNECTIONS_PER_ADDRESS = int(os.environ.get("SOCKET_CONNECTIONS_PER_ADDRESS", "200"))
    JOIN_RATE_LIMIT = os.environ.get("JOIN_RATE_LIMIT", "120 per minute")
    # A joining viewer is told the session's status and pin (and a page loads the chat history)
    # from this process's memory, kept current by the news (live/rooms.py); after this many
    # seconds it is read again in the background (news lost while Redis was away heals by
    # then). 0: read on every join.
    ROOM_CACHE_SECONDS = _env_float("ROOM_CACHE_SECONDS", 10.0)
    # Viewer visits and counts noted by joins are written together this often, in the
    # background (live/viewers.py ViewerLedger). 0 writes each at once.
    VIEWER_RECORD_SECONDS = _env_float("VIEWER_RECORD_SECONDS", 2.0)

    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    # Secure: cookies only over HTTPS (on in deploy/farmlive.env.example, off for `make run`).
    SESSION_COOKIE_SECURE = os.environ.get("SESSION_COOKIE_SECURE", "0") == "1"
    # A login lasts this long after the last request (sliding); the signed cookie's age is
    # checked on the server too, so a copied cookie expires as well. Days; fractions allowed.
    PERMANENT_SESSION_LIFETIME = timedelta(days=_env_float("SESSION_LIFETIME_DAYS", 14.0))
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
    REMEMBER_COOKIE_SECURE = SESSION_COOKIE_SECURE

    # "production" turns on the start-up guards (shop/security.py): a real SECRET_KEY, at
    # least 32 characters and not a known placeholder. deploy/ sets it; tests and `make run`
    # do not.
    FARMLIVE_ENV = os.environ.get("FARMLIVE_ENV", "development")
    # `seed-demo` creates accounts whose password is printed everywhere: it refuses to run
    # unless DEMO=1 (`make run` sets it).
    DEMO = os.environ.get("DEMO", "0") == "1"
    # Where the live page may play or embed streams from (CSP media-src, connect-src for
    # hls.js, frame-src), besides this site. Narrow it to your stream hosts in production;
    # add `http:` for a plain-HTTP stream server on a LAN.
    CSP_STREAM_SOURCES = os.environ.get("CSP_STREAM_SOURCES", "https:")
    WTF_CSRF_TIME_LIMIT = None
    WTF_CSRF_SSL_STRICT = False

    BABEL_DEFAULT_LOCALE = "zh"
    BABEL_DEFAULT_TIMEZONE = os.environ.get("TIMEZONE", "Asia/Shanghai")
    LANGUAGES = ["zh", "en"]

    API_TITLE = "Farmlive API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.0.3"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    JSON_AS_ASCII = False


class DevelopmentConfig(Config):
    """`make run`: the embedded defaults."""

    DEBUG = False


class TestConfig(Config):
    """Tests: a database chosen by the test run, no background threads, fast limits."""

    TESTING = True
    SECRET_KEY = "test-secret-key"
    FARMLIVE_ENV = "test"  # never the production guards, whatever the shell exports
    DEMO = True  # tests seed the demo data
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL") or "sqlite://"
    RUN_BACKGROUND_TASKS = False
    PAYMENT_PROVIDER = "demo"
    STRIPE_SECRET_KEY = None
    STRIPE_PUBLISHABLE_KEY = None
    STRIPE_WEBHOOK_SECRET = None
    REDIS_URL = None
    RATELIMIT_STORAGE_URI = "memory://"
    # In-process tests share one pool (server-process tests run with the production budgets).
    DB_SOCKET_POOL_SIZE = 0
    DB_BACKGROUND_POOL_SIZE = 0
    VIEWER_RECORD_SECONDS = 0.0  # a join's visit is in the database when its ack arrives
    STOCK_BROADCAST_INTERVAL = 0.0
    # Same scheme, far cheaper parameters: hashing a password costs ~0.4 s with the defaults.
    PASSWORD_HASH_METHOD = "scrypt:1024:8:1"
