"""A tiny TCP proxy on 127.0.0.1 that a test can cut, slow, black-hole and restore, to play a
database or Redis restart or a silent network without touching the machine's real PostgreSQL or
Redis (other people use them)."""

from __future__ import annotations

import selectors
import socket
import threading
import time


class TcpProxy:
    """Forwards 127.0.0.1:<port> to a target. The faults, each ended by `restore()`:

    - `cut()`: every connection is dropped and new ones refused (accepted, then closed at once:
      what a client sees while a server restarts);
    - `blackhole()`: connections stay open but no byte moves either way, and new connections are
      accepted and then never answered (a silent network: a cable pulled, a firewall dropping);
    - `slow(seconds)`: every chunk is held this long before it is forwarded.
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(256)
        self.port = self._listener.getsockname()[1]
        self._cut = threading.Event()
        self._flowing = threading.Event()
        self._flowing.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._delay = 0.0
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._held: list[socket.socket] = []  # accepted while black-holed, never answered
        self._silenced: set[socket.socket] = set()  # client ends a restore left silent for good
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        return self

    def cut(self) -> None:
        self._cut.set()
        with self._lock:
            pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            _close(*pair)

    def blackhole(self) -> None:
        self._flowing.clear()

    def slow(self, seconds: float) -> None:
        self._delay = seconds

    def restore(self, *, silent_leftovers: bool = False) -> None:
        """Back to normal. Connections held by a black hole are dropped (as a real network's
        would be by then): the client must notice and open new ones.

        With `silent_leftovers` they are not dropped but forgotten: the client's end stays open
        and silent for good while the server's end is closed (a NAT or firewall lost their
        state, or the server restarted behind it, and no reset ever reaches the client). New
        connections work; only a client that checks its connection notices.
        """
        self._cut.clear()
        self._delay = 0.0
        if not self._flowing.is_set():
            with self._lock:
                pairs, self._pairs = self._pairs, set()
                if silent_leftovers:
                    self._silenced.update(client for client, _ in pairs)
                    self._held.extend(client for client, _ in pairs)
                    held = []
                else:
                    held, self._held = self._held, []
            for client, upstream in pairs:
                _close(*((upstream,) if silent_leftovers else (client, upstream)))
            _close(*held)
        self._flowing.set()

    def stop(self) -> None:
        self._stop.set()
        self._flowing.set()
        self.cut()
        with self._lock:
            held, self._held = self._held, []
        _close(*held)
        _close(self._listener)
        self._thread.join(5)

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.2)
        while not self._stop.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if self._cut.is_set():
                _close(client)
                continue
            if not self._flowing.is_set():
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _close(client)
                continue
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _pump(self, pair: tuple[socket.socket, socket.socket]) -> None:
        """Copy bytes both ways until either side closes or the proxy is cut."""
        client, upstream = pair
        selector = selectors.DefaultSelector()
        try:  # a cut may close the pair before this thread starts: then there is nothing to pump
            for sock in pair:
                sock.setblocking(False)
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            while not self._stop.is_set():
                with self._lock:
                    if pair not in self._pairs:
                        return
                if not self._flowing.is_set():
                    self._flowing.wait(0.2)  # black hole: nothing is read, nothing forwarded
                    continue
                for key, _ in selector.select(timeout=0.2):
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    if self._delay:
                        time.sleep(self._delay)
                    while not self._flowing.is_set():  # black-holed while this chunk waited
                        if self._stop.is_set() or pair not in self._pairs:
                            return
                        self._flowing.wait(0.2)
                    key.data.setblocking(True)
                    key.data.sendall(data)
                    key.data.setblocking(False)
        except OSError:
            return
        finally:
            selector.close()
            with self._lock:
                self._pairs.discard(pair)
                silenced = client in self._silenced
            _close(*((upstream,) if silenced else (client, upstream)))


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
