"""Helpers of the zoo tests: the payload, an in-memory HTTP server on 127.0.0.1, card dicts."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

PAYLOAD = bytes(range(256)) * 256  # 64 KiB, every byte value
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class Route:
    """How the server answers one path."""

    body: bytes = PAYLOAD
    cut_first_at: int | None = None  # first request: send the headers, then only this many bytes
    honour_range: bool = True
    redirect_to: str | None = None
    status: int = 200
    content_type: str = "application/octet-stream"
    hits: int = 0


@dataclass
class Server:
    """A threaded HTTP server on 127.0.0.1; ``log`` holds ``(path, Range header)`` per request."""

    port: int = 0
    routes: dict[str, Route] = field(default_factory=dict)
    log: list[tuple[str, str | None]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def ranges(self, path: str) -> list[str | None]:
        return [rng for p, rng in self.log if p == path]


def make_handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            rng = self.headers.get("Range")
            server.log.append((self.path, rng))
            route = server.routes.get(self.path)
            if route is None:
                self.send_error(404)
                return
            route.hits += 1
            if route.redirect_to is not None:
                self.send_response(302)
                self.send_header("Location", route.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if route.status != 200:
                self.send_error(route.status)
                return
            body, start = route.body, 0
            if rng and route.honour_range:
                start = int(rng.removeprefix("bytes=").split("-")[0])
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", route.content_type)
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            if route.cut_first_at is not None and route.hits == 1:
                self.wfile.write(body[start:route.cut_first_at])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body[start:])

    return Handler


def card_data(name: str = "test-file.good", urls: list[str] | None = None, **overrides: Any) -> dict[str, Any]:
    """A valid card dict for the payload (override any field)."""
    data: dict[str, Any] = {
        "name": name, "kind": "generator", "description": "a test file", "architecture": "test-tiny",
        "file": "payload.bin", "bytes": len(PAYLOAD), "sha256": PAYLOAD_SHA,
        "sources": [{"url": u, "kind": "http"} for u in (urls or ["http://127.0.0.1:9/none"])],
        "licence": "MIT", "terms": "test data, any use", "commercial_use": "yes",
        "paper": {"title": "A Test", "authors": "Nobody", "year": 2024, "url": "https://example.org/paper"},
    }
    data.update(overrides)
    return data


