"""Zoo test setup: a temporary cache, temporary cards, and an HTTP server on 127.0.0.1 only.

Every test here runs with a guard on ``socket.create_connection`` that refuses any address but
127.0.0.1, so no test can reach the internet, even by mistake (the shipped cards point at Google
Drive and GitHub). The server (``zoo_helpers.Server``) serves bytes from memory; each route can be
a good file, a corrupt one, one of the wrong size, a transfer cut after N bytes, a redirect, an
HTML page or an error.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from zoo_helpers import Server, card_data, make_handler  # type: ignore[import-not-found]

from cfs_registry.zoo import Zoo


@pytest.fixture(autouse=True)
def _only_localhost(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuse connections to any host but 127.0.0.1; no proxy in the way."""
    real = socket.create_connection

    def guarded(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        if address[0] != "127.0.0.1":
            raise AssertionError(f"a zoo test tried to reach {address[0]}: only 127.0.0.1 is allowed")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guarded)
    for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")


@pytest.fixture(autouse=True)
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh cache for every test, through the documented variable."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("CFS_MODEL_DIR", str(cache))
    monkeypatch.delenv("CFS_CARDS_DIR", raising=False)
    return cache


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    httpd.daemon_threads = True
    state.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def cards_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An extra card folder, also visible to the CLI through ``CFS_CARDS_DIR``."""
    folder = tmp_path / "cards"
    folder.mkdir()
    monkeypatch.setenv("CFS_CARDS_DIR", str(folder))
    return folder


@pytest.fixture
def make_card(cards_dir: Path) -> Callable[..., str]:
    """Write a card into the extra folder; returns its name."""

    def make(name: str = "test-file.good", urls: list[str] | None = None, **overrides: Any) -> str:
        (cards_dir / f"{name}.json").write_text(json.dumps(card_data(name, urls, **overrides)))
        return name

    return make


@pytest.fixture
def zoo(cache_dir: Path, cards_dir: Path) -> Zoo:
    """A zoo over the shipped cards plus the test folder, with the temporary cache."""
    return Zoo(cache=cache_dir)
