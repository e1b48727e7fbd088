"""``cfs models list|info|path|pull|verify|add|remove|sets`` end to end (``inspect``/``convert``
are covered in tests/cli/test_backend_commands.py)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from typer.testing import Result
from zoo_helpers import PAYLOAD, PAYLOAD_SHA, Route, Server  # type: ignore[import-not-found]

Cfs = Callable[..., Result]
MakeCard = Callable[..., str]
G = "stylegan2-ffhq-1024.rosinality"


def _one_error_line(result: Result, *needles: str) -> str:
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def test_list_shows_cards_and_their_state(cfs: Cfs, cache_dir: Path) -> None:
    rows = json.loads(cfs("models", "list", "--json").stdout)
    by_name = {r["name"]: r for r in rows}
    assert by_name[G]["state"] == "missing" and by_name[G]["commercial_use"] == "no"
    assert by_name[G]["path"] == str(cache_dir / G / "stylegan2-ffhq-config-f.pt")
    table = cfs("models", "list", "--kind", "clip")
    assert table.exit_code == 0 and "clip-vit-b-32.openai" in table.stdout and G not in table.stdout


def test_info_json_and_table(cfs: Cfs) -> None:
    data = json.loads(cfs("models", "info", G, "--json").stdout)
    assert data["card"]["sha256"].startswith("bae494ef") and data["state"] == "missing"
    table = cfs("models", "info", "arcface-ir-se50.treb1en")
    assert table.exit_code == 0
    for text in ("model_ir_se50.pth", "ArcFace", "Non-commercial", "unknown (recorded at the first pull)"):
        assert text in table.stdout


def test_unknown_name_is_one_line_with_a_suggestion(cfs: Cfs) -> None:
    _one_error_line(cfs("models", "info", "stylegan2-ffhq-1024.rosinalty"), "unknown model", f"did you mean {G}")


def test_path_prints_where_to_put_the_file(cfs: Cfs, cache_dir: Path) -> None:
    result = cfs("models", "path", G)
    assert result.exit_code == 0 and result.stdout.strip() == str(cache_dir / G / "stylegan2-ffhq-config-f.pt")
    assert "not in the cache yet" in result.stderr


def test_offline_pull_names_the_file_and_the_path(cfs: Cfs, cache_dir: Path) -> None:
    line = _one_error_line(cfs("models", "pull", G), "stylegan2-ffhq-config-f.pt",
                           str(cache_dir / G / "stylegan2-ffhq-config-f.pt"),
                           "bae494ef77e32a9cd1792a81a3c167692a0e64f6bcd8b06592ff42917e2ed46e")
    assert "cfs models verify" in line


def test_pull_a_whole_set_reports_each_file(cfs: Cfs) -> None:
    result = cfs("models", "pull", "ffhq-1024")
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 5 and all(line.startswith("error: ") for line in lines)
    assert "open_clip's tag ViT-B-32-quickgelu/openai" in result.stderr


def test_pull_from_a_local_server_then_verify(cfs: Cfs, server: Server, make_card: MakeCard, cache_dir: Path) -> None:
    server.routes["/payload.bin"] = Route(cut_first_at=40_000)
    name = make_card(urls=[server.url("/payload.bin")])
    result = cfs("models", "pull", name)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(cache_dir / name / "payload.bin")
    assert (cache_dir / name / "payload.bin").read_bytes() == PAYLOAD
    assert server.ranges("/payload.bin") == [None, "bytes=40000-"]
    verify = json.loads(cfs("models", "verify", "--json").stdout)
    assert verify == [{"name": name, "state": "ok", "path": str(cache_dir / name / "payload.bin"), "detail": "",
                       "sha256": PAYLOAD_SHA, "bytes": len(PAYLOAD)}]
    (cache_dir / name / "payload.bin").write_bytes(bytes(len(PAYLOAD)))
    bad = cfs("models", "verify")
    assert "mismatch" in bad.stdout
    _one_error_line(bad, "1 model(s) failed verification", name)


def test_pull_url_override_needs_one_name(cfs: Cfs, server: Server, make_card: MakeCard) -> None:
    server.routes["/mirror/payload.bin"] = Route()
    name = make_card()
    assert cfs("models", "pull", name, "--url", server.url("/mirror/payload.bin")).exit_code == 0
    _one_error_line(cfs("models", "pull", name, G, "--url", server.url("/mirror/payload.bin")), "exactly one")


def test_verify_states(cfs: Cfs, cache_dir: Path) -> None:
    empty = cfs("models", "verify")
    assert empty.exit_code == 0 and "nothing in the cache yet" in empty.stderr
    _one_error_line(cfs("models", "verify", G), "failed verification", G)
    dest = cache_dir / G / "stylegan2-ffhq-config-f.pt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"not the generator")
    result = cfs("models", "verify", "--json")
    assert json.loads(result.stdout)[0]["state"] == "wrong-size" and result.exit_code == 2


def test_add_infers_a_stylegan2_architecture(cfs: Cfs, fixtures_dir: Path, cache_dir: Path) -> None:
    source = fixtures_dir / "stylegan2" / "ros_converted_tiny.pt"
    result = cfs("models", "add", source, "--name", "my-faces", "--json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["architecture_name"] == "test-tiny" and record["resolution"] == 32
    assert record["architecture"]["style_dim"] == 32 and record["layout"] == "rosinality-converted"
    copy = cache_dir / "my-faces" / "ros_converted_tiny.pt"
    assert copy.read_bytes() == source.read_bytes() and not copy.is_symlink()
    listed = {r["name"]: r for r in json.loads(cfs("models", "list", "--json").stdout)}
    assert listed["my-faces"]["origin"] == "user" and listed["my-faces"]["state"] == "present"
    assert cfs("models", "verify", "my-faces").exit_code == 0
    table = cfs("models", "add", source, "--name", "my-faces", "--force")
    assert table.exit_code == 0 and "architecture 'test-tiny'" in table.stderr
    _one_error_line(cfs("models", "add", source, "--name", "my-faces"), "already exists", "--force")
    _one_error_line(cfs("models", "add", source, "--name", G), "is a card", "place it at")
    _one_error_line(cfs("models", "add", source, "--name", "Bad Name"), "a model name is")
    _one_error_line(cfs("models", "add", source, "--name", "x", "--kind", "vae"), "--kind must be one of")


def test_add_refuses_a_file_that_is_not_a_generator(cfs: Cfs, fixtures_dir: Path) -> None:
    _one_error_line(cfs("models", "add", fixtures_dir / "stylegan2" / "tiny_d_weights.safetensors", "--name", "d"),
                    "no generator", "--kind")
    _one_error_line(cfs("models", "add", fixtures_dir / "nope.pt", "--name", "d"), "no such file")


def test_add_link_and_remove_never_touch_the_source(cfs: Cfs, tmp_path: Path, cache_dir: Path) -> None:
    source = tmp_path / "parser.pth"
    source.write_bytes(b"my parser weights")
    result = cfs("models", "add", source, "--name", "my-parser", "--kind", "parser", "--link")
    assert result.exit_code == 0, result.output
    link = cache_dir / "my-parser" / "parser.pth"
    assert link.is_symlink() and link.resolve() == source.resolve()
    removed = cfs("models", "remove", "my-parser")
    assert removed.exit_code == 0 and "removed my-parser" in removed.stderr
    assert source.read_bytes() == b"my parser weights" and not (cache_dir / "my-parser").exists()
    assert "my-parser" not in json.loads((cache_dir / "index.json").read_text())["user"]
    _one_error_line(cfs("models", "remove", "my-parser"), "unknown model")


def test_remove_a_card_file(cfs: Cfs, cache_dir: Path) -> None:
    _one_error_line(cfs("models", "remove", G), "nothing in the cache to remove")
    dest = cache_dir / G / "stylegan2-ffhq-config-f.pt"
    dest.parent.mkdir(parents=True)
    dest.write_bytes(b"partial junk")
    assert cfs("models", "remove", G).exit_code == 0 and not dest.parent.exists()


def test_sets_listing(cfs: Cfs) -> None:
    rows = {r["name"]: r for r in json.loads(cfs("models", "sets", "--json").stdout)}
    assert rows["demo"]["default"] and rows["demo"]["status"] == "available"
    assert rows["ffhq-1024"]["roles"]["generator"]["model"] == G
    table = cfs("models", "sets")
    assert table.exit_code == 0 and "demo (default)" in table.stdout and "ffhq-1024" in table.stdout


def test_generate_takes_a_zoo_model_name(cfs, tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    monkeypatch.setenv("CFS_MODEL_DIR", str(tmp_path / "cache"))
    tiny = Path(__file__).parent.parent / "fixtures" / "stylegan2" / "ros_converted_tiny.pt"
    assert cfs("models", "add", tiny, "--name", "my-tiny").exit_code == 0
    result = cfs("generate", "--model", "my-tiny", "--out", tmp_path / "g.png")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.png").exists()
    missing = cfs("generate", "--model", "stylegan2-ffhq-1024.rosinality", "--out", tmp_path / "x.png")
    assert missing.exit_code == 2 and "not in the cache yet" in missing.stderr
