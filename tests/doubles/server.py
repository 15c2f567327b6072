"""What the test doubles share: a loopback HTTP server that accepts many connections, run in a thread."""
from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class LoopbackServer(ThreadingHTTPServer):
    """Like Grafana's or Mimir's server, it accepts many connections at once (socketserver's default
    listen backlog of 5 would make concurrent clients wait for TCP retransmits)."""

    request_queue_size = 128
    daemon_threads = True
    block_on_close = False


class ServedDouble:
    """start/stop, a context manager and `url` for a double whose handler reads `server.double`."""

    handler: type[BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._server: LoopbackServer | None = None
        self._thread: threading.Thread | None = None

    def start(self):  # noqa: ANN201 - returns the double itself
        self._server = LoopbackServer(("127.0.0.1", 0), self.handler)
        self._server.double = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join()  # type: ignore[union-attr]
            self._server = self._thread = None

    def __enter__(self):  # noqa: ANN204
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError(f"{type(self).__name__} is not started")
        return f"http://127.0.0.1:{self._server.server_address[1]}"
