"""Downloads of weights into a local cache: atomic, hash-checked, retried, and offline-safe.

    $HRNET_CACHE (default ~/.cache/hrnet)   where files are kept
    HRNET_OFFLINE=1                          never touch the network: a file not in the cache is an
                                             error naming the file and where to put it

A file is written to a temporary name in the cache folder and renamed only once it is complete and
its hash matches, so the cache never holds half a file. Hashes are checked as `torch.hub` checks
them: the whole sha256 where the publisher states it, else the hex prefix embedded in the published
file name (`...-c78dce93_20200708.pth`) against the start of the sha256.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import logging
import os
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import CheckpointError

log = logging.getLogger("hrnet")
CHUNK = 1 << 20
TIMEOUT_SECONDS = 30.0
RETRIES = 3


def cache_dir() -> Path:
    """Where downloaded files are kept: $HRNET_CACHE, else ~/.cache/hrnet."""
    return Path(os.environ.get("HRNET_CACHE") or Path.home() / ".cache" / "hrnet")


def offline() -> bool:
    return os.environ.get("HRNET_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def url_cache_path(url: str) -> Path:
    """The cache path of an arbitrary URL: a folder per URL, so equal file names never collide."""
    name = Path(urllib.parse.urlparse(url).path).name or "checkpoint.pth"
    return cache_dir() / "urls" / hashlib.sha256(url.encode()).hexdigest()[:16] / name


def check_hash(path: Path, *, sha256: str | None = None, hash_prefix: str | None = None,
               name: str | None = None) -> str:
    """The file's sha256, after checking it against `sha256` or `hash_prefix`; CheckpointError on a
    mismatch (naming the file as `name`, default its own name)."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    actual = digest.hexdigest()
    expected = (sha256 or hash_prefix or "").lower()
    if expected and not actual.startswith(expected):
        raise CheckpointError(f"{name or path.name}: sha256 {actual[:16]}... does not match the published "
                              f"{'sha256' if sha256 else 'hash prefix'} {expected}")
    return actual


def _fallback(url: str, target: Path, manual: str | None) -> str:
    """What a person can do instead: the caller's instructions, else fetch the URL by hand."""
    if manual:
        return f"{manual} (its place in the cache: {target})"
    return f"download {url} yourself and save it as {target} (or pass the file's path instead)"


def download(url: str, target: Path, *, sha256: str | None = None, hash_prefix: str | None = None,
             manual: str | None = None, timeout: float = TIMEOUT_SECONDS, retries: int = RETRIES) -> Path:
    """`target` if it is cached, else `url` downloaded there (atomically, hash-checked, with retries on
    network errors and a progress bar on a terminal). `manual` tells a person how to get the file
    when the network cannot (e.g. a shared-drive page)."""
    if target.is_file():
        return target
    if offline():
        raise CheckpointError(f"{target.name} is not in the cache and HRNET_OFFLINE is set, so {url} is not "
                              "downloaded: " + _fallback(url, target, manual))
    created = not target.parent.exists()
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _download_with_retries(url, target, sha256=sha256, hash_prefix=hash_prefix, manual=manual,
                                      timeout=timeout, retries=retries)
    except BaseException:
        if created:  # leave no empty folder behind a failed download
            with contextlib.suppress(OSError):
                target.parent.rmdir()
        raise


def _download_with_retries(url: str, target: Path, *, sha256: str | None, hash_prefix: str | None,
                           manual: str | None, timeout: float, retries: int) -> Path:
    last_error: Exception | None = None
    for attempt in range(1, retries + 1):
        try:
            _fetch(url, target, timeout=timeout, sha256=sha256, hash_prefix=hash_prefix)
            return target
        except CheckpointError as error:  # a wrong answer (404, HTML, hash): retrying does not help
            raise CheckpointError(f"could not download {url}: {error}; " + _fallback(url, target, manual)) from None
        except (urllib.error.URLError, OSError, TimeoutError, http.client.HTTPException) as error:
            last_error = error
            if attempt < retries:
                log.warning("download of %s failed (%s); retrying (%d/%d)", url, error, attempt + 1, retries)
                time.sleep(min(2.0 ** attempt, 10.0) * 0.1)
    raise CheckpointError(f"could not download {url} after {retries} tries ({last_error}); check the network, or "
                          + _fallback(url, target, manual)) from None


def _fetch(url: str, target: Path, *, timeout: float, sha256: str | None, hash_prefix: str | None) -> None:
    """One attempt: stream into a temporary file beside `target`, check length and hash, rename."""
    request = urllib.request.Request(url, headers={"User-Agent": "hrnet"})
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as error:
        raise CheckpointError(f"the server answered HTTP {error.code} ({error.reason})") from None
    with response:
        kind = response.headers.get("Content-Type", "")
        if kind.startswith("text/html"):
            raise CheckpointError("the server returned a web page (HTML), not a file: the link is probably a "
                                  "sign-in or share page")
        expected = int(response.headers.get("Content-Length") or 0)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                received = _copy(response, handle, expected, target.name)
            if expected and received != expected:
                raise OSError(f"the transfer stopped after {received} of {expected} bytes")
            check_hash(Path(tmp), sha256=sha256, hash_prefix=hash_prefix, name=target.name)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)


def _copy(response, handle, expected: int, name: str) -> int:
    bar = None
    if sys.stderr.isatty():
        from tqdm.auto import tqdm

        bar = tqdm(total=expected or None, unit="B", unit_scale=True, desc=name, leave=False)
    received = 0
    try:
        for chunk in iter(lambda: response.read(CHUNK), b""):
            handle.write(chunk)
            received += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    return received


def place_file(source: str | os.PathLike, target: Path, *, sha256: str | None = None,
               hash_prefix: str | None = None) -> Path:
    """Copy a file a person downloaded by hand into the cache (atomically), after checking its hash
    when one is given (CheckpointError on a mismatch; nothing is written then)."""
    source = Path(source)
    if not source.is_file():
        raise CheckpointError(f"{source} is not a file; pass the path of the downloaded checkpoint")
    if sha256 or hash_prefix:
        check_hash(source, sha256=sha256, hash_prefix=hash_prefix)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return target
