"""Start and stop real Farmlive server processes (gunicorn, one gevent worker each) for benchmarks
and the scale tests, and prepare the database they share."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"
PG_ADMIN_URL = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(**extra: str) -> dict[str, str]:
    """The environment a production process gets, minus anything leaking from the caller."""
    skip = ("STRIPE_", "REDIS_URL", "DATABASE_URL", "PAYMENT_PROVIDER", "SOCKETIO_", "TEST_")
    env = {k: v for k, v in os.environ.items() if not k.startswith(skip)}
    env.update(PYTHONUNBUFFERED="1", SOCKETIO_ASYNC_MODE="gevent")
    env.update(extra)
    return env


class GunicornServer:
    """`gunicorn -k gevent -w 1 --bind 127.0.0.1:PORT wsgi:app`, as deploy/systemd runs it.

    `target` and `config` let the benchmark serve its minimal baseline app the same way.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_path: Path,
        port: int | None = None,
        *,
        target: str = "wsgi:app",
        config: Path = ROOT / "gunicorn.conf.py",
    ) -> None:
        self.target = target
        self.config = config
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> GunicornServer:
        command = [
            str(GUNICORN),
            "--config",
            str(self.config),
            "--worker-class",
            "gevent",
            "--workers",
            "1",
            "--bind",
            f"127.0.0.1:{self.port}",
            self.target,
        ]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float) -> None:
        """Poll /healthz until 200; fail with the log tail if the process dies or never answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"server on {self.port} exited:\n{self.log_tail()}")
            if self.health()[0] == 200:
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"server on {self.port} not healthy in {timeout}s:\n{self.log_tail()}")

    def health(self, timeout: float = 3.0) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()
        except (OSError, urllib.error.URLError):
            return 0, b""

    def worker_pid(self) -> int | None:
        """The gevent worker (the master's only child): the process that holds the viewers."""
        if self.proc is None:
            return None
        try:
            children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text()
        except OSError:
            return None
        pids = [int(p) for p in children.split()]
        return pids[0] if pids else None

    def rss_mb(self) -> float:
        """Resident memory of the worker process, from /proc (Linux)."""
        pid = self.worker_pid()
        if pid is None:
            return 0.0
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(25)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def start_servers(count: int, env: dict[str, str], log_dir: Path) -> list[GunicornServer]:
    """Start `count` processes on free ports; stop the ones already up if one fails."""
    servers: list[GunicornServer] = []
    try:
        for i in range(count):
            servers.append(GunicornServer(env, log_dir / f"server-{i}.log").start())
    except Exception:
        stop_all(servers)
        raise
    return servers


def stop_all(servers: list[GunicornServer]) -> None:
    for server in servers:
        server.stop()


def reset_postgres_database(name: str, admin_url: str = PG_ADMIN_URL) -> str:
    """Drop and create `name` (a database only the benchmark uses); return its SQLAlchemy URL."""
    import psycopg

    if not name.replace("_", "").isalnum():
        raise ValueError(f"unsafe database name {name!r}")
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    return f"{base}/{name}"


def create_schema(database_url: str) -> None:
    """The app's tables via the models (the same metadata Alembic's migration is made from)."""
    from shop import create_app
    from shop.extensions import db

    app = create_app(
        "config.Config", SQLALCHEMY_DATABASE_URI=database_url, RUN_BACKGROUND_TASKS=False
    )
    with app.app_context():
        db.create_all()
        db.engine.dispose()
