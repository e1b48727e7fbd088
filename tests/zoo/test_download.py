"""``pull`` against a local HTTP server: good, corrupt, wrong size, cut and resumed, redirect, mirrors."""

from __future__ import annotations

import json
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from zoo_helpers import PAYLOAD, PAYLOAD_SHA, Route, Server  # type: ignore[import-not-found]

from cfs_core.errors import CfsError, InputError
from cfs_core.methods import ProgressEvent
from cfs_registry.download import DownloadError, pull
from cfs_registry.zoo import Zoo


MakeCard = Callable[..., str]


def _leftovers(zoo: Zoo, name: str) -> list[str]:
    folder = zoo.model_dir(name)
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_is_downloaded_verified_and_recorded(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/good.bin"] = Route()
    name = make_card(urls=[server.url("/good.bin")])
    events: list[ProgressEvent] = []
    result = pull(zoo, name, progress=events.append, chunk_size=4096)
    assert result.action == "downloaded" and result.verified and result.sha256 == PAYLOAD_SHA
    assert result.path.read_bytes() == PAYLOAD
    assert _leftovers(zoo, name) == ["payload.bin"]  # no .part, no sidecar
    assert events[-1].step == events[-1].total == len(PAYLOAD) and len(events) > 10
    recorded = zoo.read_index()["pulled"][name]
    assert recorded["sha256"] == PAYLOAD_SHA and recorded["verified"] is True
    assert zoo.status(name, rehash=True).state == "ok"
    again = pull(zoo, name)  # already there: no second request
    assert again.action == "present" and server.ranges("/good.bin") == [None]


def test_corrupt_file_is_deleted_and_reported_in_one_line(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/corrupt.bin"] = Route(body=PAYLOAD[:-1] + b"\x00")
    name = make_card(urls=[server.url("/corrupt.bin")])
    with pytest.raises(DownloadError) as err:
        pull(zoo, name)
    message = str(err.value)
    assert "corrupt download" in message and PAYLOAD_SHA in message and "\n" not in message
    assert f"place payload.bin at {zoo.path(name)}" in message  # still says what to do by hand
    assert _leftovers(zoo, name) == []


def test_wrong_size_stops_before_the_body(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/short.bin"] = Route(body=PAYLOAD[:1000])
    name = make_card(urls=[server.url("/short.bin")])
    with pytest.raises(DownloadError, match=r"offers 1,000 bytes, the card says 65,536"):
        pull(zoo, name)
    assert _leftovers(zoo, name) == []


def test_cut_transfer_is_resumed_with_range(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/cut.bin"] = Route(cut_first_at=20_000)
    name = make_card(urls=[server.url("/cut.bin")])
    result = pull(zoo, name, chunk_size=4096)
    assert result.path.read_bytes() == PAYLOAD and result.verified
    assert server.ranges("/cut.bin") == [None, "bytes=20000-"]
    assert any("resumed at 20,000 bytes" in m for m in result.messages)


def test_cut_transfer_is_kept_and_resumed_by_the_next_pull(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/cut.bin"] = Route(cut_first_at=30_000)
    name = make_card(urls=[server.url("/cut.bin")])
    with pytest.raises(DownloadError) as err:
        pull(zoo, name, retries=0)
    assert err.value.resumable and "pull again to resume" in str(err.value)
    part = zoo.part_path(zoo.path(name))
    assert part.stat().st_size == 30_000 and zoo.status(name).state == "partial"
    result = pull(zoo, name)
    assert result.path.read_bytes() == PAYLOAD
    assert server.ranges("/cut.bin") == [None, "bytes=30000-"]
    assert _leftovers(zoo, name) == ["payload.bin"]


def test_server_ignoring_range_restarts_from_zero(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/norange.bin"] = Route(cut_first_at=10_000, honour_range=False)
    name = make_card(urls=[server.url("/norange.bin")])
    result = pull(zoo, name)
    assert result.path.read_bytes() == PAYLOAD
    assert server.ranges("/norange.bin") == [None, "bytes=10000-"]  # asked, got a full 200, started over


def test_part_of_another_file_is_not_resumed(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/good.bin"] = Route()
    name = make_card(urls=[server.url("/good.bin")])
    part = zoo.part_path(zoo.path(name))
    part.parent.mkdir(parents=True)
    part.write_bytes(b"x" * 5000)
    Path(str(part) + ".json").write_text(json.dumps({"url": "elsewhere", "sha256": "0" * 64, "bytes": 1}))
    result = pull(zoo, name)
    assert result.path.read_bytes() == PAYLOAD and server.ranges("/good.bin") == [None]


def test_redirect_is_followed(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/moved"] = Route(redirect_to="/files/good.bin")
    server.routes["/files/good.bin"] = Route()
    name = make_card(urls=[server.url("/moved")])
    result = pull(zoo, name)
    assert result.path.read_bytes() == PAYLOAD
    assert [p for p, _ in server.log] == ["/moved", "/files/good.bin"]


def test_mirrors_are_tried_in_order(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/mirror2/payload.bin"] = Route()
    name = make_card(urls=[server.url("/mirror1/payload.bin"), server.url("/mirror2/payload.bin")])
    result = pull(zoo, name)
    assert result.url.endswith("/mirror2/payload.bin") and result.path.read_bytes() == PAYLOAD
    assert "HTTP 404" in result.messages[0]


def test_web_page_instead_of_file_is_refused(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/page"] = Route(body=b"<html>sign in</html>", content_type="text/html; charset=utf-8")
    name = make_card(urls=[server.url("/page")], bytes=None, sha256=None)
    with pytest.raises(DownloadError, match="sent a web page"):
        pull(zoo, name)
    assert _leftovers(zoo, name) == []


def test_unknown_sha256_is_recorded_and_said(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/good.bin"] = Route()
    name = make_card(urls=[server.url("/good.bin")], bytes=None, sha256=None)
    result = pull(zoo, name)
    assert not result.verified
    assert any("could not verify" in m and PAYLOAD_SHA in m for m in result.messages)
    assert zoo.entry(name).sha256 == PAYLOAD_SHA  # the reference for later verify runs
    assert zoo.status(name, rehash=True).state == "recorded"
    zoo.path(name).write_bytes(bytes(len(PAYLOAD)))
    assert zoo.status(name, rehash=True).state == "mismatch"


def test_no_network_says_which_file_to_place_where(zoo: Zoo, make_card: MakeCard) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    name = make_card(urls=[f"http://127.0.0.1:{port}/payload.bin"])
    with pytest.raises(DownloadError) as err:
        pull(zoo, name, retries=0, timeout=5)
    message = str(err.value)
    assert f"place payload.bin at {zoo.path(name)} (65,536 bytes, sha256 {PAYLOAD_SHA})" in message
    assert "cfs models verify test-file.good" in message and "\n" not in message


def test_browser_only_card_needs_no_network(zoo: Zoo) -> None:
    name = "stylegan2-ffhq-1024.rosinality"  # a shipped card: Google Drive only
    with pytest.raises(InputError) as err:
        pull(zoo, name)
    message = str(err.value)
    assert f"place stylegan2-ffhq-config-f.pt at {zoo.path(name)} (381,462,551 bytes, sha256 " \
           "bae494ef77e32a9cd1792a81a3c167692a0e64f6bcd8b06592ff42917e2ed46e)" in message
    assert "drive.google.com" in message and "need a browser" in message and "\n" not in message


def test_clip_card_explains_open_clip(zoo: Zoo) -> None:
    with pytest.raises(InputError) as err:
        pull(zoo, "clip-vit-b-32.openai")
    message = str(err.value)
    assert "ViT-B-32-quickgelu/openai" in message and str(zoo.path("clip-vit-b-32.openai")) in message
    assert "--url https://openaipublic.azureedge.net/" in message


def test_url_override_and_its_checks(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/private/payload.bin"] = Route()
    name = make_card()  # the card's own source is unreachable
    result = pull(zoo, name, url=server.url("/private/payload.bin"))
    assert result.path.read_bytes() == PAYLOAD
    with pytest.raises(InputError, match="only http:// and https://"):
        pull(zoo, name, url="file:///etc/passwd", force=True)


def test_present_but_corrupt_file_needs_force(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/good.bin"] = Route()
    name = make_card(urls=[server.url("/good.bin")])
    dest = zoo.path(name)
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"y" * len(PAYLOAD))
    with pytest.raises(InputError, match="mismatch.*--force"):
        pull(zoo, name)
    assert pull(zoo, name, force=True).path.read_bytes() == PAYLOAD


def test_user_models_are_not_pulled(zoo: Zoo, tmp_path: Path) -> None:
    file = tmp_path / "mine.bin"
    file.write_bytes(b"weights")
    zoo.add(file, "mine", kind="parser")
    with pytest.raises(CfsError, match="a model you added"):
        pull(zoo, "mine")


def test_next_mirror_resumes_a_cut_part_of_the_same_file(zoo: Zoo, server: Server, make_card: MakeCard) -> None:
    server.routes["/a/payload.bin"] = Route(cut_first_at=25_000)
    server.routes["/b/payload.bin"] = Route()
    name = make_card(urls=[server.url("/a/payload.bin"), server.url("/b/payload.bin")])
    result = pull(zoo, name, retries=0)  # mirror a is cut once and not retried; b carries on (same sha256)
    assert result.path.read_bytes() == PAYLOAD and result.url.endswith("/b/payload.bin")
    assert server.ranges("/b/payload.bin") == ["bytes=25000-"]
