"""What the arrival and storm phases read beside their own clients, all cheap and bounded:

- CPU seconds per phase of the benchmark client itself (getrusage), of each server process
  (its gunicorn master and workers, from /proc, dead workers included), of PostgreSQL and Redis
  (every process of that name, exited backends included) and of the whole machine (/proc/stat),
  so the client's share on the same two cores is separated from the servers';
- the client's own event-loop lag (how late a 50 ms sleep wakes up): a busy client stamps
  every arrival late;
- each server's per-event latency: a probe socket per process emits a no-op `leave` every
  0.25 s and times the ack, i.e. how long one event waits in that process's gevent loop;
- PostgreSQL's view (pg_stat_activity every 0.5 s): connections busy (active or idle in
  transaction; 40 = both pools of 20 checked out), backends waiting on a lock, and the
  statements the busy ones run or wait in, by how often they were seen;
- lines in each server's log since the phase began (pool timeouts, outages, errors).
"""

from __future__ import annotations

import asyncio
import os
import resource
import time
from collections import Counter
from pathlib import Path

import socketio

from bench.clients import ms, percentile
from bench.page_viewer import Client

TICKS = os.sysconf("SC_CLK_TCK")
LOG_PATTERNS = {
    "pool_timeouts": "QueuePool limit",
    "dependency_unavailable": "dependency",  # "dependency unavailable", "... is unavailable"
    "worker_timeouts": "WORKER TIMEOUT",
    "tracebacks": "Traceback",
    "errors": "ERROR",
}


def _proc_cpu(pid: int | None, *, children: bool = False) -> float:
    """utime + stime of `pid` (plus its reaped children's) in seconds; 0 when it is gone."""
    if pid is None:
        return 0.0
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = int(fields[11]) + int(fields[12])  # utime, stime
    if children:
        ticks += int(fields[13]) + int(fields[14])  # cutime, cstime: workers already reaped
    return ticks / TICKS


def server_cpu(server) -> float:
    """A gunicorn server's CPU so far: the master, its live worker and every reaped worker."""
    master = server.proc.pid if server.proc is not None else None
    return _proc_cpu(master, children=True) + _proc_cpu(server.worker_pid())


def service_cpu(names: tuple[str, ...] = ("postgres", "redis-server")) -> dict[str, float]:
    """CPU seconds of every process called `name` (PostgreSQL's backends, Redis), plus the
    exited children their parents have reaped (backends of closed connections)."""
    found: dict[str, float] = {name: 0.0 for name in names}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            head, rest = stat.read_text().rsplit(")", 1)
        except OSError:
            continue
        name = head.split("(", 1)[1]
        if name in found:
            fields = rest.split()
            found[name] += sum(int(v) for v in fields[11:15]) / TICKS  # own + reaped children
    return found


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = values[3] + values[4]  # idle, iowait
    return (sum(values) - idle) / TICKS, sum(values) / TICKS


class CpuMeter:
    """`mark()` at a phase's start, `read()` at its end: CPU seconds by whom, and the wall time."""

    def __init__(self, servers) -> None:
        self.servers = servers
        self._start: dict = {}

    def _now(self) -> dict:
        own = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "wall": time.monotonic(),
            "client": own.ru_utime + own.ru_stime,
            "servers": [server_cpu(s) for s in self.servers],
            "services": service_cpu(),
            "machine": machine_busy()[0],
        }

    def mark(self) -> None:
        self._start = self._now()

    def read(self) -> dict:
        end, start = self._now(), self._start
        wall = end["wall"] - start["wall"]
        client = end["client"] - start["client"]
        servers = [b - a for a, b in zip(start["servers"], end["servers"], strict=True)]
        machine = end["machine"] - start["machine"]
        services = {k: end["services"][k] - start["services"].get(k, 0.0) for k in end["services"]}
        cores = os.cpu_count() or 1
        return {
            "wall_s": round(wall, 1),
            "client_cpu_s": round(client, 1),
            "servers_cpu_s": [round(s, 1) for s in servers],
            "postgres_cpu_s": round(services["postgres"], 1),
            "redis_cpu_s": round(services["redis-server"], 1),
            "machine_busy_s": round(machine, 1),
            # anything else: the kernel's own work, other programs on the machine
            "other_cpu_s": round(machine - client - sum(servers) - sum(services.values()), 1),
            "machine_busy_share": round(machine / (wall * cores), 2) if wall else None,
            "client_share_of_busy": round(client / machine, 2) if machine else None,
        }


class LoopLag:
    """How late this process's asyncio loop wakes from a 50 ms sleep (the client's own delay)."""

    def __init__(self, period: float = 0.05) -> None:
        self.period = period
        self.lags: list[float] = []
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self.lags = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        for _ in range(10_000_000):
            before = time.monotonic()
            await asyncio.sleep(self.period)
            self.lags.append(time.monotonic() - before - self.period)

    async def stop(self) -> dict:
        if self._task is not None:
            self._task.cancel()
        return {
            "client_loop_lag_p50_ms": ms(percentile(self.lags, 50)),
            "client_loop_lag_p99_ms": ms(percentile(self.lags, 99)),
            "client_loop_lag_max_ms": ms(max(self.lags) if self.lags else None),
        }


class EventProbe:
    """One socket per server emitting a no-op `leave` every `period`: the ack's delay is how
    long a Socket.IO event waits in that process (its gevent loop and the WebSocket write)."""

    def __init__(self, urls: list[str], session_id: int, period: float = 0.25) -> None:
        self.urls = urls
        self.session_id = session_id
        self.period = period
        self.samples: list[list[float]] = [[] for _ in urls]
        self.misses = [0 for _ in urls]
        self._clients: list[socketio.AsyncClient] = []
        self._tasks: list[asyncio.Task] = []

    async def start(self) -> None:
        for i, url in enumerate(self.urls):
            client = Client(Counter(), reconnection_delay=0.5, handle_sigint=False)
            await client.connect(url, namespaces=["/live"], transports=["websocket"])
            self._clients.append(client)
            self._tasks.append(asyncio.create_task(self._run(i, client)))

    def reset(self) -> None:
        self.samples = [[] for _ in self.urls]
        self.misses = [0 for _ in self.urls]

    async def _run(self, i: int, client: socketio.AsyncClient) -> None:
        for _ in range(10_000_000):
            await asyncio.sleep(self.period)
            if "/live" not in client.namespaces:
                continue  # reconnecting (its server was restarted)
            started = time.monotonic()
            try:
                await client.call(
                    "leave", {"session_id": self.session_id}, namespace="/live", timeout=10
                )
                self.samples[i].append(time.monotonic() - started)
            except socketio.exceptions.SocketIOError:
                self.misses[i] += 1

    def read(self) -> dict:
        return {
            "event_probe_p50_ms": [ms(percentile(s, 50)) for s in self.samples],
            "event_probe_p99_ms": [ms(percentile(s, 99)) for s in self.samples],
            "event_probe_max_ms": [ms(max(s) if s else None) for s in self.samples],
            "event_probe_unanswered": list(self.misses),
        }

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for client in self._clients:
            try:
                await asyncio.wait_for(client.disconnect(), 5)
            except Exception:  # noqa: BLE001 - the end of the run
                pass


class PgActivity:
    """pg_stat_activity of the benchmark's database every 0.5 s (PostgreSQL only)."""

    QUERY = (
        "SELECT state, wait_event_type, wait_event,"
        " left(regexp_replace(query, '\\s+', ' ', 'g'), 70) FROM pg_stat_activity"
        " WHERE datname = %s AND pid <> pg_backend_pid()"
    )

    def __init__(self, database_url: str | None, period: float = 0.5) -> None:
        self.url = database_url
        self.period = period
        self.busy: list[int] = []
        self.lock_waits: list[int] = []
        self.statements: Counter = Counter()  # (state, wait event, statement) -> times seen
        self._conn = None
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        if not self.url:
            return
        import psycopg
        from sqlalchemy.engine import make_url

        url = make_url(self.url)
        self._database = url.database
        self._conn = await psycopg.AsyncConnection.connect(
            url.set(drivername="postgresql").render_as_string(hide_password=False),
            autocommit=True,
        )
        self._task = asyncio.create_task(self._run())

    def reset(self) -> None:
        self.busy, self.lock_waits = [], []
        self.statements = Counter()

    async def _run(self) -> None:
        for _ in range(10_000_000):
            await asyncio.sleep(self.period)
            rows = await (await self._conn.execute(self.QUERY, (self._database,))).fetchall()
            states: Counter = Counter()
            for state, wait_type, wait_event, statement in rows:
                states[state] += 1
                if wait_type == "Lock":
                    states["lock"] += 1
                if state in ("active", "idle in transaction"):
                    self.statements[f"{state} | {wait_event or '-'} | {statement}"] += 1
            self.busy.append(states["active"] + states["idle in transaction"])
            self.lock_waits.append(states["lock"])

    def read(self) -> dict:
        if not self.busy:
            return {}
        return {
            "pg_busy_connections_max": max(self.busy),
            "pg_busy_connections_mean": round(sum(self.busy) / len(self.busy), 1),
            "pg_lock_waiters_max": max(self.lock_waits),
            "pg_samples_with_lock_waits": sum(1 for n in self.lock_waits if n),
            "pg_samples": len(self.busy),
            "pg_busy_seen": dict(self.statements.most_common(8)),
        }

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._conn is not None:
            await self._conn.close()


class LogCounter:
    """Counts LOG_PATTERNS in each server's log written since `mark()`."""

    def __init__(self, servers) -> None:
        self.servers = servers
        self._offsets = [0 for _ in servers]

    def mark(self) -> None:
        self._offsets = [_size(s.log_path) for s in self.servers]

    def read(self) -> dict:
        counts: dict[str, list[int]] = {key: [] for key in LOG_PATTERNS}
        for server, offset in zip(self.servers, self._offsets, strict=True):
            text = _read_from(server.log_path, offset)
            for key, pattern in LOG_PATTERNS.items():
                counts[key].append(text.count(pattern))
        return {f"log_{key}": value for key, value in counts.items()}


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _read_from(path: Path, offset: int) -> str:
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except OSError:
        return ""


class Meters:
    """Every meter above, marked and read together at a phase's edges."""

    def __init__(self, servers, urls: list[str], session_id: int, database_url: str | None):
        self.cpu = CpuMeter(servers)
        self.lag = LoopLag()
        self.probe = EventProbe(urls, session_id)
        self.pg = PgActivity(database_url)
        self.logs = LogCounter(servers)

    async def start(self) -> None:
        await self.probe.start()
        await self.pg.start()

    def mark(self) -> None:
        self.cpu.mark()
        self.lag.start()
        self.probe.reset()
        self.pg.reset()
        self.logs.mark()

    async def read(self) -> dict:
        out = {"cpu": self.cpu.read(), **await self.lag.stop()}
        out.update(self.probe.read(), **self.pg.read(), **self.logs.read())
        return out

    async def stop(self) -> None:
        await self.probe.stop()
        await self.pg.stop()
