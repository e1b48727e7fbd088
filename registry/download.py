"""``cfs models pull``: resumable, verified downloads of card files into the cache.

Transport is the standard library's ``urllib``: it follows redirects, honours ``*_proxy`` /
``no_proxy`` and verifies TLS certificates, and a ``Range`` header is all resuming needs — so the
zoo adds no HTTP dependency (requests/httpx) for what is one GET loop.

One download, step by step (:func:`fetch`):

1. bytes go to ``<file>.part`` next to the destination; ``<file>.part.json`` records what the part
   belongs to (URL, expected size and SHA-256), so a later pull resumes it with
   ``Range: bytes=N-`` only when it is the same file;
2. a 206 answer appends, a 200 answer (server ignores ``Range``) starts over;
3. a size announced by the server that differs from the card's stops the transfer at once;
4. a transfer cut in the middle is retried from where it stopped (``retries`` times), then kept
   as ``.part`` for the next pull;
5. the finished file is checked against the card's size and SHA-256 (a corrupt file is deleted)
   and renamed into place atomically.

Mirrors are tried in order. When no source can be fetched (offline, Google-Drive-only cards),
:func:`pull` raises one line saying which file to place at which path, with its size and SHA-256.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cfs_core.errors import CfsError, InputError
from cfs_core.fileio import atomic_write_text
from cfs_core.methods import ProgressCallback, ProgressEvent
from cfs_registry.zoo import Card, Entry, Zoo, human_size

USER_AGENT = "cfs-faceshop model zoo (python urllib)"
CHUNK = 1 << 20


class DownloadError(CfsError):
    """A download failed; ``resumable`` when a ``.part`` file was kept for the next attempt."""

    def __init__(self, message: str, resumable: bool = False) -> None:
        super().__init__(message)
        self.resumable = resumable


class _Interrupted(Exception):
    """The connection dropped mid-transfer (internal: triggers a resume)."""

    def __init__(self, done: int, reason: str) -> None:
        super().__init__(reason)
        self.done = done


@dataclass(frozen=True)
class Downloaded:
    """A finished, checked download."""

    path: Path
    url: str
    bytes: int
    sha256: str
    resumed_from: int = 0  # bytes already on disk when the last (successful) request started


@dataclass(frozen=True)
class PullResult:
    """What :func:`pull` did for one model."""

    name: str
    path: Path
    action: str  # downloaded | present
    sha256: str
    verified: bool  # checked against a SHA-256 the card gives
    url: str = ""
    messages: list[str] = field(default_factory=list)


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects (≤ 10, urllib's limit) to http(s) URLs only."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlparse(newurl).scheme not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, f"refusing a redirect to {newurl}", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def check_url(url: str) -> str:
    """Accept only ``http(s)://host/...`` URLs (no ``file:``, ``ftp:``…)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise InputError(f"'{url}': only http:// and https:// URLs can be downloaded")
    return url


def _meta_path(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _discard(part: Path) -> None:
    for path in (part, _meta_path(part)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _resume_offset(part: Path, identity: dict[str, Any], expected_bytes: int | None) -> int:
    """Bytes of a ``.part`` that belongs to this very file (else the part is discarded → 0)."""
    if not part.exists():
        _discard(part)
        return 0
    try:
        meta = json.loads(_meta_path(part).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        meta = None
    same = meta is not None and (
        meta.get("sha256") == identity["sha256"] if identity["sha256"] else meta.get("url") == identity["url"])
    size = part.stat().st_size
    if not same or (expected_bytes is not None and size > expected_bytes):
        _discard(part)
        return 0
    return size


def _content_range(value: str | None) -> tuple[int, int | None] | None:
    """``bytes S-E/T`` → (S, T or None)."""
    match = re.match(r"bytes\s+(\d+)-\d+/(\d+|\*)", value or "")
    if not match:
        return None
    return int(match.group(1)), None if match.group(2) == "*" else int(match.group(2))


def fetch(url: str, dest: Path, *, expected_bytes: int | None = None, expected_sha256: str | None = None,
          progress: ProgressCallback | None = None, label: str | None = None, retries: int = 2,
          timeout: float = 30.0, chunk_size: int = CHUNK) -> Downloaded:
    """Download ``url`` to ``dest`` through ``dest.part`` (resume, size and SHA-256 checks, rename)."""
    check_url(url)
    part = dest.with_name(dest.name + ".part")
    identity = {"url": url, "sha256": expected_sha256, "bytes": expected_bytes}
    dest.parent.mkdir(parents=True, exist_ok=True)
    attempts = 0
    while True:
        offset = _resume_offset(part, identity, expected_bytes)
        try:
            done, digest, offset = _transfer(url, part, offset, identity, expected_bytes, progress or (lambda e: None),
                                     label or dest.name, timeout, chunk_size)
            break
        except _Interrupted as cut:
            attempts += 1
            if attempts > retries:
                total = f" of {expected_bytes:,}" if expected_bytes else ""
                raise DownloadError(f"{url}: transfer cut at {cut.done:,}{total} bytes ({cut}); kept {part} "
                                    "— run the same pull again to resume", resumable=True) from None
    if expected_bytes is not None and done != expected_bytes:
        _discard(part)
        raise DownloadError(f"{url}: got {done:,} bytes, the card says {expected_bytes:,} (deleted the download)")
    if expected_sha256 is not None and digest != expected_sha256:
        _discard(part)
        raise DownloadError(f"{url}: corrupt download, sha256 {digest} instead of {expected_sha256} (deleted it)")
    os.replace(part, dest)
    with contextlib.suppress(FileNotFoundError):
        _meta_path(part).unlink()
    return Downloaded(dest, url, done, digest, offset)


def _transfer(url: str, part: Path, offset: int, identity: dict[str, Any], expected_bytes: int | None,
              progress: ProgressCallback, label: str, timeout: float, chunk_size: int) -> tuple[int, str, int]:
    """One HTTP request appending to ``part`` from ``offset``; returns (bytes, sha256 hex, start offset)."""
    headers = {"User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    opener = urllib.request.build_opener(_HttpOnlyRedirects())
    try:
        response = opener.open(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # our part is not a prefix the server knows: start over
            _discard(part)
            raise _Interrupted(0, "the server refused to resume (HTTP 416)") from None
        raise DownloadError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise DownloadError(f"{url}: {reason}") from None
    with response:
        ctype = response.headers.get("Content-Type", "")
        if ctype.startswith("text/html"):
            raise DownloadError(f"{url}: the server sent a web page, not the file (this source needs a browser)")
        length = response.headers.get("Content-Length")
        if response.status == 206:
            span = _content_range(response.headers.get("Content-Range"))
            if span is None or span[0] != offset:
                _discard(part)
                raise _Interrupted(0, "the server resumed at another offset")
            total = span[1] if span[1] is not None else (offset + int(length) if length else None)
        else:
            offset = 0  # a plain 200: the server ignored Range; start over
            total = int(length) if length else None
        if expected_bytes is not None and total is not None and total != expected_bytes:
            _discard(part)
            raise DownloadError(f"{url}: the server offers {total:,} bytes, the card says {expected_bytes:,} "
                                "— not the expected file (nothing kept)")
        if total is not None:
            free = shutil.disk_usage(part.parent).free
            if free < total - offset:
                raise DownloadError(f"{part.parent}: {human_size(free)} free, {human_size(total - offset)} needed")
        atomic_write_text(_meta_path(part), json.dumps(identity))
        digest = hashlib.sha256()
        if offset:
            with open(part, "rb") as prefix:
                for block in iter(lambda: prefix.read(CHUNK), b""):
                    digest.update(block)
        done = offset
        progress(ProgressEvent(stage=label, step=done, total=total, message=_progress_text(done, total)))
        with open(part, "ab" if offset else "wb") as out:
            while True:
                try:
                    block = response.read(chunk_size)
                except (http.client.HTTPException, OSError) as exc:
                    raise _Interrupted(done, f"{type(exc).__name__}: {exc}") from None
                if not block:
                    break
                out.write(block)
                digest.update(block)
                done += len(block)
                if expected_bytes is not None and done > expected_bytes:
                    out.close()
                    _discard(part)
                    raise DownloadError(f"{url}: more than the {expected_bytes:,} bytes the card says (deleted it)")
                progress(ProgressEvent(stage=label, step=done, total=total, message=_progress_text(done, total)))
            out.flush()
            os.fsync(out.fileno())
    if total is not None and done < total:
        raise _Interrupted(done, "the connection closed early")
    return done, digest.hexdigest(), offset


def _progress_text(done: int, total: int | None) -> str:
    return f"{human_size(done)} / {human_size(total)}"


# -- pulling a card ---------------------------------------------------------------------------------


def placement_hint(zoo: Zoo, entry: Entry) -> str:
    """``place FILE at PATH (size, sha256 …)``: what to do by hand."""
    facts = [f"{entry.bytes:,} bytes" if entry.bytes else "size unknown",
             f"sha256 {entry.sha256}" if entry.sha256 else "sha256 unknown"]
    return f"place {entry.file} at {zoo.path(entry.name)} ({', '.join(facts)})"


def _browser_hint(card: Card) -> str:
    pages = [f"{s.url}" + (f" ({s.note})" if s.note else "") for s in card.sources if s.kind == "browser"]
    return f" — get it from {' or '.join(pages)}" if pages else ""


def clip_instructions(zoo: Zoo, card: Card) -> str:
    """CLIP-SPECIFIC (kept minimal): a CLIP card is fetched through open_clip's own tag.

    cfs does not download it by itself; the line says where to pre-place OpenAI's file and how
    open_clip's own copy is found (``cfs_core.clip.resolve_pretrained_file``).
    """
    oc = card.open_clip or {}
    entry = zoo.entry(card.name)
    direct = next((s.url for s in card.sources if s.kind == "open_clip" and s.url.endswith(card.file)), None)
    fetch_cmd = f"`cfs models pull {card.name} --url {direct}` fetches and checks it" if direct else ""
    hub = f"; or let open_clip cache its own copy (Hugging Face hub {oc['hf_hub']}), which cfs finds in the " \
          "Hugging Face cache" if oc.get("hf_hub") else ""
    return (f"{card.name} is open_clip's tag {oc.get('model')}/{oc.get('pretrained')}, which cfs does not download "
            f"by itself: {placement_hint(zoo, entry)}"
            + (f" — {fetch_cmd}" if fetch_cmd else "") + hub)


def pull(zoo: Zoo, name: str, url: str | None = None, force: bool = False,
         progress: ProgressCallback | None = None, retries: int = 2, timeout: float = 30.0,
         chunk_size: int = CHUNK) -> PullResult:
    """Bring a card's file into the cache (mirrors in order, or ``url``); record what was measured.

    Raises :class:`DownloadError`/:class:`InputError` with one line; when nothing could be fetched
    the line says which file to place where.
    """
    entry = zoo.entry(name)
    if entry.card is None:
        raise InputError(f"'{name}' is a model you added (nothing to download); its file is {zoo.path(name)}")
    card = entry.card
    dest = zoo.path(name)
    if dest.exists() and not force:
        status = zoo.status(name, rehash=True)
        if status.problem:
            raise InputError(f"{dest} exists but is not the card's file ({status.state}: {status.detail}); "
                             f"run `cfs models remove {name}` or pull with --force")
        return PullResult(name, dest, "present", status.sha256 or "", status.state == "ok",
                          messages=[f"{name}: already in the cache ({status.state})"])
    if url is not None:
        urls = [check_url(url)]
    elif card.open_clip is not None:
        raise InputError(clip_instructions(zoo, card))
    else:
        urls = card.http_sources()
    if not urls:
        raise InputError(f"{name} cannot be downloaded by cfs (its sources need a browser): "
                         f"{placement_hint(zoo, entry)}{_browser_hint(card)}; then run `cfs models verify {name}`")
    failures: list[DownloadError] = []
    for candidate in urls:
        try:
            got = fetch(candidate, dest, expected_bytes=card.bytes, expected_sha256=card.sha256, progress=progress,
                        label=card.file, retries=retries, timeout=timeout, chunk_size=chunk_size)
        except DownloadError as exc:
            failures.append(exc)  # a kept .part is resumed by the next mirror when the sha256 is known
            continue
        verified = card.sha256 is not None
        zoo.record_pull(name, got.sha256, got.bytes, got.url, verified)
        notes = [f"{name}: downloaded {human_size(got.bytes)} from {got.url}"
                 + (f" (resumed at {got.resumed_from:,} bytes)" if got.resumed_from else "")]
        if not verified:
            notes.append(f"{name}: could not verify it — the card gives no sha256; recorded {got.sha256} "
                         "for later `cfs models verify` runs")
        if failures:
            notes.insert(0, f"{name}: {len(failures)} source(s) failed first: {failures[-1]}")
        return PullResult(name, dest, "downloaded", got.sha256, verified, got.url, notes)
    last = failures[-1]
    others = f" ({len(failures) - 1} other source(s) failed too)" if len(failures) > 1 else ""
    if Zoo.part_path(dest).exists():
        kept = next((f for f in reversed(failures) if f.resumable), last)
        raise DownloadError(f"could not finish {card.file}: {kept}{others}", resumable=True)
    raise DownloadError(f"could not download {card.file}: {last}{others}; {placement_hint(zoo, entry)}"
                        f"{_browser_hint(card)}; then run `cfs models verify {name}`")


def pull_many(zoo: Zoo, names: Sequence[str], **kwargs: Any) -> tuple[list[PullResult], list[str]]:
    """Pull several models; returns the results and one error line per failure."""
    results, errors = [], []
    for name in names:
        try:
            results.append(pull(zoo, name, **kwargs))
        except CfsError as exc:
            errors.append(str(exc))
    return results, errors
