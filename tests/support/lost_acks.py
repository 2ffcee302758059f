"""An HTTP proxy on 127.0.0.1 that loses acknowledgements, to make real SDK clients retry.

Every `every`-th request is forwarded to the ingest, which stores it and answers 200; the proxy
then drops the client's connection without a response, as a flaky network would. The client
retries the same batch (same messageIds, a new `sentAt`); the proxy lets the retry through. So
the pipeline must count each of those events once and report the rest as duplicates.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from tests.support.sent_events import message_ids

FORWARDED_HEADERS = ("content-type", "content-encoding", "authorization", "user-agent")


class LostAcks:
    def __init__(self, upstream: str, every: int) -> None:
        self.upstream = upstream
        self.every = every
        self.requests = 0
        self.lost: list[list[str]] = []  # messageIds of each batch whose 200 was dropped
        self.statuses: list[int] = []
        self.encodings: set[str] = set()  # Content-Encoding of the requests, "identity" if none
        self.paths: set[str] = set()
        self._lock = threading.Lock()
        self._client = httpx.Client(base_url=upstream, timeout=30)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {h: v for h in FORWARDED_HEADERS if (v := self.headers.get(h))}
                response = proxy._client.post(self.path, content=body, headers=headers)
                with proxy._lock:
                    proxy.requests += 1
                    proxy.statuses.append(response.status_code)
                    proxy.encodings.add(headers.get("content-encoding", "identity"))
                    proxy.paths.add(self.path)
                    lose = response.status_code == 200 and proxy.requests % proxy.every == 0
                    if lose:
                        ids = message_ids(body)
                        proxy.lost.append(ids)
                if lose:
                    self.close_connection = True
                    return
                self.send_response(response.status_code)
                for name in ("content-type", "retry-after"):
                    if name in response.headers:
                        self.send_header(name, response.headers[name])
                self.send_header("content-length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def duplicates(self) -> int:
        return sum(len(ids) for ids in self.lost)

    @contextmanager
    def running(self) -> Iterator[LostAcks]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            self._client.close()
