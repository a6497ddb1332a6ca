"""Fixtures of the weights tests: a cache in tmp_path, a local HTTP server (127.0.0.1 only: no test
touches the internet) that can also misbehave, a tiny registered architecture, and registry entries
re-pointed at that server."""

from __future__ import annotations

import hashlib
import http.server
import threading
import time
from pathlib import Path

import pytest

import hrnet
from hrnet.spec import VARIANTS
from helpers import one_thread, tiny_spec  # noqa: F401  (one_thread: autouse)

TINY = "hrnet_tiny"


class Handler(http.server.BaseHTTPRequestHandler):
    """GET /<mode>/<file>: mode "files" serves the file; "truncated" announces 100 more bytes than it
    sends; "html" answers a sign-in page; "sleep" waits 3 s first. A missing file is a 404."""

    root: Path
    requests: list

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.requests.append(self.path)
        mode, _, name = self.path.lstrip("/").partition("/")
        if mode == "html":
            return self._send(b"<html><body>Sign in to download</body></html>", "text/html; charset=utf-8")
        path = self.root / name
        if not path.is_file():
            self.send_error(404, "Not Found")
            return
        data = path.read_bytes()
        if mode == "sleep":
            time.sleep(3.0)
        if mode == "truncated":
            return self._send(data[: len(data) // 2], "application/octet-stream", length=len(data))
        self._send(data, "application/octet-stream")

    def _send(self, body: bytes, kind: str, length: int | None = None) -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(length if length is not None else len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


@pytest.fixture
def server(tmp_path):
    """(folder served, base URL, list of request paths) of a server on 127.0.0.1."""
    root = tmp_path / "served"
    root.mkdir()
    requests: list[str] = []
    handler = type("TestHandler", (Handler,), {"root": root, "requests": requests})
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", requests
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty HRNET_CACHE; HRNET_OFFLINE unset."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("HRNET_CACHE", str(folder))
    monkeypatch.delenv("HRNET_OFFLINE", raising=False)
    return folder


@pytest.fixture
def tiny_arch(monkeypatch) -> str:
    """`hrnet_tiny` registered in spec.VARIANTS for the test (widths 8/16/32/64)."""
    monkeypatch.setitem(VARIANTS, TINY, tiny_spec())
    return TINY


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def hashes():
    """path -> its sha256 (hex)."""
    return sha256


@pytest.fixture
def repoint():
    """`serve(entry, file, base, ...)`: a registry entry re-pointed at a served file."""
    return serve


def serve(entry: hrnet.Weights, file: Path, base: str, *, arch: str | None = None, mode: str = "files",
          use_sha256: bool = False) -> hrnet.Weights:
    """The entry re-pointed at `file` (already in the served folder), under `arch` if given, with the
    file's real hash: its first 8 hex digits in the file name (as publishers do) or the whole sha256."""
    digest = sha256(file)
    name = f"{arch or entry.arch}.{entry.tag}"
    if use_sha256:
        return entry.replace(name=name, url=f"{base}/{mode}/{file.name}", file_name=file.name, sha256=digest,
                             hash_prefix=None, direct=True, manual=None, aliases=())
    published = f"{file.stem}-{digest[:8]}{file.suffix}"
    file.rename(file.with_name(published))
    return entry.replace(name=name, url=f"{base}/{mode}/{published}", file_name=published, sha256=None,
                         hash_prefix=digest[:8], direct=True, manual=None, aliases=())
