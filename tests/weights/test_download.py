"""Downloads of registry entries through hrnet.hub, and every way they fail: each failure names the URL
and the manual fallback, and leaves nothing half-written in the cache. A local server only."""

import pytest
import torch

import hrnet
from hrnet.errors import CheckpointError


def _file(root, name="weights.pth"):
    path = root / name
    torch.save({"backbone.conv1.weight": torch.randn(8, 3, 3, 3)}, path)
    return path


def _cache_files(cache):
    return sorted(p for p in cache.rglob("*") if p.is_file()) if cache.exists() else []


@pytest.fixture
def entry():
    return hrnet.get_weights("hrnet_w32.coco_256x192")


def test_download_checks_the_hash_caches_and_reuses(server, cache, entry, repoint, hashes):
    root, base, requests = server
    served = repoint(entry, _file(root), base)
    path = served.get_path()
    assert path == cache / "weights" / served.name / served.file_name
    assert hashes(path).startswith(served.hash_prefix)
    assert served.get_path() == path and len(requests) == 1  # the second call reads the cache
    (root / served.file_name).unlink()
    assert served.get_path() == path
    assert _cache_files(cache) == [path]


def test_a_full_published_sha256_is_checked_too(server, cache, entry, repoint, hashes):
    root, base, _ = server
    served = repoint(entry, _file(root), base, use_sha256=True)
    assert hashes(served.get_path()) == served.sha256


def test_hash_mismatch_names_url_and_hash_and_keeps_nothing(server, cache, entry, repoint, hashes):
    root, base, _ = server
    served = repoint(entry, _file(root), base)
    wrong = served.replace(file_name=served.file_name.replace(served.hash_prefix, "0badf00d"), hash_prefix="0badf00d")
    (root / served.file_name).rename(root / wrong.file_name)
    wrong = wrong.replace(url=f"{base}/files/{wrong.file_name}")
    with pytest.raises(CheckpointError) as caught:
        wrong.get_path()
    message = str(caught.value)
    assert wrong.url in message and "0badf00d" in message and "does not match" in message
    assert f"hrnet weights place {wrong.name} FILE" in message
    assert _cache_files(cache) == []


@pytest.mark.parametrize("mode, expected", [("truncated", "stopped after"), ("html", "web page"),
                                            ("missing", "HTTP 404")])
def test_broken_answers_fail_clearly(server, cache, entry, mode, expected, repoint):
    root, base, requests = server
    served = repoint(entry, _file(root), base)
    if mode == "missing":
        (root / served.file_name).unlink()
    else:
        served = served.replace(url=f"{base}/{mode}/{served.file_name}")
    with pytest.raises(CheckpointError, match=expected) as caught:
        served.get_path(retries=2, timeout=5)
    assert served.url in str(caught.value) and "hrnet weights place" in str(caught.value)
    assert _cache_files(cache) == [] and not (cache / "weights" / served.name).exists()
    # A transfer that stops is retried; a wrong answer (web page, 404) is not.
    assert len(requests) == (2 if mode == "truncated" else 1)


def test_a_server_that_does_not_answer_times_out(server, cache, entry, repoint, hashes):
    root, base, _ = server
    served = repoint(entry, _file(root), base, mode="sleep")
    with pytest.raises(CheckpointError, match="after 1 tries .*timed out") as caught:
        served.get_path(timeout=0.3, retries=1)
    assert served.url in str(caught.value) and "hrnet weights place" in str(caught.value)
    assert _cache_files(cache) == []


def test_offline_mode_never_downloads(server, cache, entry, monkeypatch, repoint):
    root, base, requests = server
    served = repoint(entry, _file(root), base)
    monkeypatch.setenv("HRNET_OFFLINE", "1")
    with pytest.raises(CheckpointError, match="HRNET_OFFLINE") as caught:
        served.get_path()
    message = str(caught.value)
    assert served.url in message and served.file_name in message and f"hrnet weights place {served.name}" in message
    assert requests == [] and _cache_files(cache) == []
    monkeypatch.delenv("HRNET_OFFLINE")
    path = served.get_path()
    monkeypatch.setenv("HRNET_OFFLINE", "1")
    assert served.get_path() == path  # a cached file is used offline


def test_share_page_entries_say_how_to_download_by_hand(cache):
    manual = hrnet.get_weights("hrnet_w32.coco_256x192_official")
    assert not manual.direct
    with pytest.raises(CheckpointError) as caught:
        manual.get_path()
    message = str(caught.value)
    assert manual.url in message and "pose_hrnet_w32_256x192.pth" in message
    assert f"hrnet weights place {manual.name} FILE" in message and str(manual.cache_path) in message


def test_place_checks_the_hash_and_the_file(server, cache, entry, tmp_path, repoint, hashes):
    root, base, _ = server
    served = repoint(entry, _file(root), base)
    good = root / served.file_name
    other = _file(tmp_path, "other.pth")
    with pytest.raises(CheckpointError, match="does not match the published hash prefix"):
        served.place(other)
    assert _cache_files(cache) == []
    assert served.place(good) == served.cache_path and hashes(served.cache_path) == hashes(good)
    unhashed = hrnet.get_weights("hrnet_w32.coco_256x192_official")
    broken = tmp_path / "broken.pth"
    broken.write_bytes(good.read_bytes()[:100])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        unhashed.place(broken)
    with pytest.raises(CheckpointError, match="is not a file"):
        unhashed.place(tmp_path / "nowhere.pth")
    assert not unhashed.cache_path.exists()
