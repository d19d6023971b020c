"""A tiny local "exchange rates" service, so that GET /rates has a slow upstream offline.

It runs in a thread of the app's own process (started and stopped by the lifespan) and
answers after about 80 ms, like a remote API would.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: how long the upstream takes to answer
LATENCY_S = 0.08
RATES = {"base": "USD", "EUR": 0.92, "GBP": 0.79, "JPY": 151.4}


class _RatesHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(LATENCY_S)  # the upstream's own thread: this is the remote's latency
        body = json.dumps(RATES).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the app's own log is uvicorn's."""


class RatesUpstream:
    """The upstream on an ephemeral loopback port: :meth:`start`, :attr:`url`, :meth:`stop`."""

    def __init__(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _RatesHandler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="rates-upstream", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/rates"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
