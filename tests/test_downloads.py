"""Model downloads through a fake Hugging Face Hub on 127.0.0.1: what a user sees when they work and when they fail."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import pathlib
import random
import re
import socket
import time
from collections import namedtuple
from pathlib import Path

import pytest
from huggingface_hub import constants as hf_constants

from fake_hub import NO_SIZE, FakeHub, Lie
from memstore.errors import ConfigError, InvalidInput
from memstore.llm import downloads
from memstore.llm.downloads import (
    DownloadEntry,
    DownloadStatus,
    ModelDownloads,
    downloaded_path,
    load_download_list,
)

REPO = "test-org/tiny-chat-GGUF"
FILENAME = "tiny-chat.Q4_K_M.gguf"
PAYLOAD = random.Random(20240901).randbytes(300_000)


def closed_port_endpoint() -> str:
    """An endpoint on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def entry_for(
    filename: str = FILENAME, *, repo_id: str = REPO, sha256: str | None = None, size_bytes: int = len(PAYLOAD)
) -> DownloadEntry:
    return DownloadEntry(
        key="tiny-chat-q4_k_m",
        label="Tiny Chat (Q4_K_M)",
        repo_id=repo_id,
        filename=filename,
        size_bytes=size_bytes,
        license="Apache-2.0",
        note="Fast, forgets a lot.",
        sha256=sha256,
    )


def assert_one_sentence(text: str | None) -> None:
    assert text, "a failed download must say why"
    assert "\n" not in text and "Traceback" not in text and "Error:" not in text
    assert text[0].isupper() and text.endswith("."), text
    assert not re.search(r"[.;]\s+[A-Z][a-z]+ [a-z]", text[:-1]), f"more than one sentence: {text}"


def cached_files(cache: Path) -> list[Path]:
    """Model data in the cache: blobs, snapshot entries and leftovers (not huggingface_hub's locks and refs)."""
    if not cache.exists():
        return []
    return [
        p
        for p in cache.rglob("*")
        if (p.is_file() or p.is_symlink())
        and ("blobs" in p.parts or "snapshots" in p.parts or p.name.endswith(".incomplete"))
    ]


@pytest.fixture(autouse=True)
def hub_env(monkeypatch):
    """No telemetry, no real Hub (a closed port unless a test points HF_ENDPOINT at its fake), small read chunks."""
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("HF_ENDPOINT", closed_port_endpoint())
    monkeypatch.delenv("MEMORYLAB_MODELS_FILE", raising=False)
    # huggingface_hub 2.4.0 reads the body in 10 MB chunks and reports progress per chunk: make a
    # 300 kB file arrive in several steps, as a 1 GB model does.
    monkeypatch.setattr(hf_constants, "DOWNLOAD_CHUNK_SIZE", 16 * 1024)


@pytest.fixture
def hub(monkeypatch):
    with FakeHub() as running:
        running.add_file(REPO, FILENAME, PAYLOAD)
        monkeypatch.setenv("HF_ENDPOINT", running.endpoint)
        yield running


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "hf-cache"


def test_a_download_ends_done_with_the_same_bytes_and_progress_that_rose(hub, cache):
    hub.bytes_per_s = 200_000  # about 1.5 s, so the polling below sees it move even on a busy machine
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    first = manager.start(entry)
    assert first.state == "downloading"
    seen: list[int] = []
    texts: list[str] = []
    deadline = time.monotonic() + 15
    while (status := manager.status(entry)).state in ("downloading", "verifying") and time.monotonic() < deadline:
        if status.state == "downloading":  # then the finished file is hashed, from 0 again
            seen.append(status.done_bytes)
            texts.append(status.progress_text)
        time.sleep(0.01)
    assert status.state == "done", status.error
    assert Path(status.path).read_bytes() == PAYLOAD
    assert status.fraction == 1.0 and status.done_bytes == len(PAYLOAD)
    moving = sorted(set(seen))
    assert seen == sorted(seen), "progress must never go back"
    assert len([n for n in moving if 0 < n < len(PAYLOAD)]) >= 3, f"progress should rise in steps, saw {moving}"
    assert any(re.fullmatch(r"\d+ kB of 300 kB", t) for t in texts), texts
    assert downloaded_path(entry, cache_dir=cache) == Path(status.path)


def test_start_while_running_does_not_start_a_second_download(hub, cache):
    hub.bytes_per_s = 600_000
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    manager.start(entry)
    again = manager.start(entry)
    assert again.state == "downloading"
    assert manager.wait(entry, 15).state == "done"
    assert len(hub.requests_for("GET")) == 1


def test_the_cached_file_is_found_with_the_network_gone(cache, monkeypatch):
    with FakeHub() as hub:
        entry = entry_for(sha256=hub.add_file(REPO, FILENAME, PAYLOAD))
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        manager = ModelDownloads(cache_dir=cache)
        manager.start(entry)
        assert manager.wait(entry, 15).state == "done"

    def no_network(*args, **kwargs):
        raise AssertionError("finding a downloaded file must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(socket, "create_connection", no_network)
    found = downloaded_path(entry, cache_dir=cache)
    assert found is not None and found.read_bytes() == PAYLOAD
    later = ModelDownloads(cache_dir=cache)  # as after a restart of the app
    assert later.status(entry) == DownloadStatus("done", len(PAYLOAD), len(PAYLOAD), path=str(found))
    assert later.start(entry).state == "done"


def test_the_cache_folder_comes_from_hf_hub_cache_at_call_time(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "from-env"))
    manager = ModelDownloads()
    manager.start(entry_for())
    status = manager.wait(entry_for(), 15)
    assert status.state == "done", status.error
    assert Path(status.path).is_relative_to(tmp_path / "from-env")


def test_a_pinned_revision_is_downloaded_and_found(hub, cache):
    pinned = DownloadEntry(**{**entry_for().__dict__, "revision": "85553858e3522ce5b531285b2202bdb40fab1624"})
    manager = ModelDownloads(cache_dir=cache)
    manager.start(pinned)
    status = manager.wait(pinned, 15)
    assert status.state == "done", status.error
    assert "/resolve/85553858e3522ce5b531285b2202bdb40fab1624/" in hub.requests_for("GET")[0].path
    assert downloaded_path(pinned, cache_dir=cache) == Path(status.path)
    assert downloaded_path(entry_for(), cache_dir=cache) is None  # "main" was never fetched


def test_a_connection_dropped_mid_file_is_resumed_with_a_range_request(hub, cache):
    hub.fail_next("drop", after_bytes=100_000)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "done", status.error
    assert Path(status.path).read_bytes() == PAYLOAD
    gets = hub.requests_for("GET")
    assert len(gets) == 2 and gets[0].range is None
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1].range or "")[1])
    assert 0 < resumed_at <= 100_000


def test_a_reset_connection_fails_with_a_sentence_and_download_again_succeeds(hub, cache):
    hub.fail_next("reset", after_bytes=100_000)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    manager.start(entry)
    failed = manager.wait(entry, 15)
    assert failed.state == "failed"
    assert_one_sentence(failed.error)
    assert "broke" in failed.error and "press Download again" in failed.error
    assert downloaded_path(entry, cache_dir=cache) is None
    assert cached_files(cache) == []  # huggingface_hub 2.4 deletes its partial file
    assert manager.status(entry).state == "failed"  # the sentence stays until the user acts

    assert manager.start(entry).state == "downloading"
    done = manager.wait(entry, 15)
    assert done.state == "done", done.error
    assert Path(done.path).read_bytes() == PAYLOAD


def test_a_missing_file_is_named_and_nothing_is_written(hub, cache):
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for("absent.Q4_K_M.gguf")
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "absent.Q4_K_M.gguf" in status.error and REPO in status.error
    assert not cache.exists()
    assert hub.requests_for("GET") == []


def test_a_missing_repository_is_named(hub, cache):
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for(repo_id="nobody/nothing-GGUF")
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "nobody/nothing-GGUF" in status.error
    assert not cache.exists()


def test_a_gated_repository_says_to_log_in(hub, cache):
    hub.fail_next(401)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "gated" in status.error and "HF_TOKEN" in status.error
    assert not cache.exists()


def test_an_unreachable_hub_fails_at_once_with_a_sentence(cache):
    endpoint = downloads.hub_endpoint()  # the closed port the autouse fixture chose
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    began = time.monotonic()
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert time.monotonic() - began < 5, "an unreachable Hub must be reported quickly, not after retries"
    assert_one_sentence(status.error)
    assert status.error.startswith(f"Cannot reach the Hugging Face Hub at {endpoint}")
    assert not cache.exists()


def test_a_hub_that_does_not_answer_times_out_with_a_sentence(hub, cache):
    hub.fail_next("stall", method="HEAD", seconds=3)
    manager = ModelDownloads(cache_dir=cache, head_timeout_s=0.3)
    entry = entry_for()
    began = time.monotonic()
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert time.monotonic() - began < 2.5
    assert_one_sentence(status.error)
    assert "did not answer in time" in status.error and hub.endpoint in status.error
    assert not cache.exists()


def test_too_little_free_space_refuses_before_any_request(hub, cache, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(downloads.shutil, "disk_usage", lambda path: usage(1_000_000_000, 950_000_000, 50_000_000))
    manager = ModelDownloads(cache_dir=cache)
    status = manager.start(entry_for())
    assert status.state == "failed"  # at once, from start() itself
    assert_one_sentence(status.error)
    assert "100 MB" in status.error and "50 MB" in status.error  # needed (file + margin) and free
    time.sleep(0.1)
    assert hub.requests == []
    assert not cache.exists()


class _FillsUp:
    """A file that takes `room_bytes` and then fails as a full disk does."""

    def __init__(self, stream, room_bytes: int):
        self._stream, self._room_bytes = stream, room_bytes

    def write(self, data: bytes) -> int:
        if len(data) > self._room_bytes:
            raise OSError(errno.ENOSPC, "No space left on device")
        self._room_bytes -= len(data)
        return self._stream.write(data)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stream.close()

    def __getattr__(self, name):
        return getattr(self._stream, name)


def test_a_disk_that_fills_up_during_the_write_gives_a_sentence(hub, cache, monkeypatch):
    real_open = pathlib.Path.open

    def open_on_a_small_disk(self, mode="r", *args, **kwargs):
        stream = real_open(self, mode, *args, **kwargs)
        return _FillsUp(stream, 64 * 1024) if self.name.endswith(".incomplete") and mode[0] in "wx" else stream

    monkeypatch.setattr(pathlib.Path, "open", open_on_a_small_disk)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "filled up" in status.error and str(cache) in status.error
    assert downloaded_path(entry, cache_dir=cache) is None
    assert cached_files(cache) == []

    monkeypatch.setattr(pathlib.Path, "open", real_open)  # space freed: the next try works
    manager.start(entry)
    assert manager.wait(entry, 15).state == "done"


def test_a_file_with_the_wrong_sha256_is_deleted_and_never_offered(hub, cache):
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for(sha256="0" * 64)
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "sha256" in status.error and "deleted" in status.error
    assert downloaded_path(entry, cache_dir=cache) is None
    assert cached_files(cache) == []
    assert ModelDownloads(cache_dir=cache).status(entry).state == "idle"


def test_a_file_with_the_right_sha256_is_done(hub, cache):
    entry = entry_for(sha256=hub.add_file(REPO, FILENAME, PAYLOAD))
    manager = ModelDownloads(cache_dir=cache)
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "done", status.error
    assert downloaded_path(entry, cache_dir=cache) == Path(status.path)


def test_progress_text_reads_like_the_hub():
    status = DownloadStatus(
        "downloading", done_bytes=412_000_000, total_bytes=986_000_000, started_at=time.monotonic() - 10
    )
    assert status.progress_text == "412 MB of 986 MB · about 14 s left"
    assert status.fraction == pytest.approx(412 / 986)
    assert DownloadStatus("downloading", 0, 986_000_000, started_at=time.monotonic()).seconds_left is None
    assert DownloadStatus("idle", total_bytes=1_120_000_000).progress_text == "1.12 GB to download"


# -- the list of models ----------------------------------------------------------------------

GOOD_MODEL = {
    "key": "qwen2.5-1.5b-instruct-q4_k_m",
    "label": "Qwen2.5 1.5B Instruct (Q4_K_M)",
    "repo_id": "Qwen/Qwen2.5-1.5B-Instruct-GGUF",
    "filename": "qwen2.5-1.5b-instruct-q4_k_m.gguf",
    "size_bytes": 1_117_320_736,
    "license": "Apache-2.0",
    "note": "Quick; recalls well in short chats.",
    "sha256": "A" * 64,
    "context_tokens": 8192,
}


def write_list(tmp_path: Path, models, *, fmt: str = "memorylab.models/1") -> Path:
    path = tmp_path / "models.json"
    path.write_text(json.dumps({"format": fmt, "models": models}), encoding="utf-8")
    return path


def test_a_good_list_loads(tmp_path, monkeypatch):
    second = dict(GOOD_MODEL, key="other", sha256=None, revision="v1")
    path = write_list(tmp_path, [GOOD_MODEL, second])
    entries = load_download_list(path)
    assert [e.key for e in entries] == ["qwen2.5-1.5b-instruct-q4_k_m", "other"]
    assert entries[0].sha256 == "a" * 64 and entries[0].size_bytes == 1_117_320_736
    assert entries[1].sha256 is None and entries[1].revision == "v1"
    monkeypatch.setenv("MEMORYLAB_MODELS_FILE", str(path))
    assert load_download_list() == entries


def _without(name: str) -> dict:
    return {k: v for k, v in GOOD_MODEL.items() if k != name}


@pytest.mark.parametrize(
    "models, words",
    [
        ([_without("repo_id")], ["entry 1", "missing", "repo_id"]),
        ([_without("size_bytes")], ["missing", "size_bytes"]),
        ([dict(GOOD_MODEL, size_bytes="1 GB")], ["size_bytes", "whole number"]),
        ([dict(GOOD_MODEL, size_bytes=True)], ["size_bytes", "whole number"]),
        ([dict(GOOD_MODEL, size_bytes=0)], ["size_bytes", "above 0"]),
        ([dict(GOOD_MODEL, size_bytes=-5)], ["size_bytes", "above 0"]),
        ([dict(GOOD_MODEL, sha256="abc123")], ["sha256", "64 hexadecimal"]),
        ([dict(GOOD_MODEL, sha256="g" * 64)], ["sha256", "64 hexadecimal"]),
        ([GOOD_MODEL, dict(GOOD_MODEL, filename="other.gguf")], ["entry 2", "repeats the key", "entry 1"]),
        ([dict(GOOD_MODEL, filename="model.safetensors")], ["model.safetensors", ".gguf"]),
        ([dict(GOOD_MODEL, repo_id="Qwen2.5-GGUF")], ["Qwen2.5-GGUF", "owner/name"]),
        ([dict(GOOD_MODEL, label="")], ["label", "non-empty"]),
        ([dict(GOOD_MODEL, license=3)], ["license", "string"]),
        ([dict(GOOD_MODEL, sha_256="a" * 64)], ["unknown", "sha_256"]),
        ([dict(GOOD_MODEL, revision="../../../outside")], ["revision", "commit, branch or tag"]),
        ([dict(GOOD_MODEL, revision="/etc")], ["revision", "commit, branch or tag"]),
        (["qwen"], ["entry 1", "JSON object"]),
        ([], ["at least one"]),
    ],
)
def test_a_malformed_list_is_refused_with_a_sentence(tmp_path, models, words):
    path = write_list(tmp_path, models)
    with pytest.raises(InvalidInput) as caught:
        load_download_list(path)
    message = str(caught.value)
    assert_one_sentence(message)
    assert str(path) in message
    for word in words:
        assert word in message, message


def test_a_list_that_is_not_json_or_has_the_wrong_format_is_refused(tmp_path):
    path = tmp_path / "models.json"
    path.write_text('{"format": "memorylab.models/1", "models": [', encoding="utf-8")
    with pytest.raises(InvalidInput, match="not valid JSON"):
        load_download_list(path)
    with pytest.raises(InvalidInput, match="memorylab.models/1"):
        load_download_list(write_list(tmp_path, [GOOD_MODEL], fmt="memorylab.models/2"))
    with pytest.raises(ConfigError, match="does not exist"):
        load_download_list(tmp_path / "nowhere.json")


# -- a hostile Hub: nothing it says may name a path or a size ------------------------------------

CANARY = b"SQLite format 3\x00 the app's own database: must survive byte-identical"


def files_outside(root: Path, cache: Path) -> dict[str, bytes]:
    """Every file and link under `root` but outside `cache`, with its bytes (a link's target), to compare."""
    found: dict[str, bytes] = {}
    for path in root.rglob("*"):
        if path == cache or path.is_relative_to(cache):
            continue
        if path.is_symlink():
            found[str(path)] = f"-> {os.readlink(path)}".encode()
        elif path.is_file():
            found[str(path)] = path.read_bytes()
        else:
            found[str(path)] = b"<folder>"
    return found


def links_leaving(cache: Path) -> list[Path]:
    if not cache.exists():
        return []
    real_cache = cache.resolve()
    return [p for p in cache.rglob("*") if p.is_symlink() and not p.resolve().is_relative_to(real_cache)]


@pytest.fixture
def outside(tmp_path, cache) -> Path:
    """The folder around the cache, holding a canary where the app's database would be."""
    (tmp_path / "lab.db").write_bytes(CANARY)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.txt").write_bytes(b"a file of the app's")
    return tmp_path


ABSOLUTE = "<absolute canary>"


@pytest.mark.parametrize(
    "lie, sha_matches, ends",
    [
        (Lie(etag="../../../lab.db"), False, "failed"),  # the attack run: the mismatch cleanup deleted lab.db
        (Lie(etag="../../../lab.db"), True, "done"),  # lab.db already "is" the blob: it was hashed, then deleted
        (Lie(etag="../../../new.gguf"), True, "done"),  # a new file written outside the cache
        (Lie(etag=ABSOLUTE), False, "failed"),
        (Lie(etag="..\\..\\..\\lab.db"), False, "failed"),
        (Lie(etag="../../../data"), True, "done"),  # a folder of the app's as the blob
        (Lie(commit="../../../snapshot"), True, "failed"),  # a commit that is a path: snapshot folders outside
        (Lie(commit="/tmp"), True, "failed"),
    ],
    ids=[
        "etag-up-wrong-sha",
        "etag-up-right-sha",
        "etag-new-file",
        "etag-absolute",
        "etag-backslashes",
        "etag-folder",
        "commit-up",
        "commit-absolute",
    ],
)
def test_a_hub_naming_a_path_touches_nothing_outside_the_cache(hub, cache, outside, lie, sha_matches, ends):
    if lie.etag == ABSOLUTE:
        lie = Lie(etag=str(outside / "lab.db"))
    hub.lie(REPO, FILENAME, lie)
    entry = entry_for(sha256=hashlib.sha256(PAYLOAD if sha_matches else b"another file").hexdigest())
    before = files_outside(outside, cache)
    manager = ModelDownloads(cache_dir=cache)
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert files_outside(outside, cache) == before  # nothing deleted, changed or added outside: no .lock either
    assert (outside / "lab.db").read_bytes() == CANARY
    assert links_leaving(cache) == []
    assert status.state == ends, status.error
    if ends == "done":
        assert Path(status.path).read_bytes() == PAYLOAD
        assert Path(status.path).resolve().is_relative_to(cache.resolve())
        assert downloaded_path(entry, cache_dir=cache) == Path(status.path)
    else:
        assert_one_sentence(status.error)
        assert cached_files(cache) == []
        assert downloaded_path(entry, cache_dir=cache) is None


def test_a_second_download_over_a_hostile_one_still_touches_nothing_outside(hub, cache, outside):
    """The same file downloaded twice (the second finds the first's cache entries) keeps the canary."""
    hub.lie(REPO, FILENAME, Lie(etag="../../../lab.db"))
    entry = entry_for(sha256=hashlib.sha256(PAYLOAD).hexdigest())
    before = files_outside(outside, cache)
    for _ in range(2):
        manager = ModelDownloads(cache_dir=cache)
        manager.start(entry)
        assert manager.wait(entry, 15).state == "done"
        assert files_outside(outside, cache) == before


@pytest.mark.parametrize("folder", ["blobs", "snapshots", ""])
def test_a_link_planted_in_the_cache_is_not_followed_out_of_it(hub, cache, outside, folder):
    """A folder of the cache that is a link to elsewhere is refused with a sentence; nothing is written there."""
    elsewhere = outside / "elsewhere"
    elsewhere.mkdir()
    repo_folder = cache / "models--test-org--tiny-chat-GGUF"
    link = repo_folder / folder if folder else repo_folder
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(elsewhere, target_is_directory=True)
    before = files_outside(outside, cache)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for(sha256=hashlib.sha256(PAYLOAD).hexdigest())
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "outside" in status.error and str(cache) in status.error
    assert files_outside(outside, cache) == before
    assert list(elsewhere.iterdir()) == []


def test_a_cache_ref_naming_a_path_outside_is_not_offered(cache, outside):
    """A refs file (written from a server's commit by an older download) cannot point the app at a file outside."""
    stray = outside / "stray" / FILENAME
    stray.parent.mkdir()
    stray.write_bytes(PAYLOAD)
    refs = cache / "models--test-org--tiny-chat-GGUF" / "refs"
    refs.mkdir(parents=True)
    (cache / "models--test-org--tiny-chat-GGUF" / "snapshots").mkdir()
    (refs / "main").write_text("../../../stray")
    assert downloaded_path(entry_for(), cache_dir=cache) is None
    assert ModelDownloads(cache_dir=cache).status(entry_for()).state == "idle"


def _count_writes(monkeypatch, cache: Path) -> list[int]:
    """The most bytes each file opened for writing in the cache ever held, as a download writes it."""
    real_open = pathlib.Path.open
    sizes: list[int] = []

    class Counting:
        def __init__(self, stream):
            self._stream, self._index = stream, len(sizes)
            sizes.append(0)

        def write(self, data: bytes) -> int:
            written = self._stream.write(data)
            sizes[self._index] = max(sizes[self._index], self._stream.tell())
            return written

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self._stream.close()

        def __getattr__(self, name):
            return getattr(self._stream, name)

    def counting_open(self, mode="r", *args, **kwargs):
        stream = real_open(self, mode, *args, **kwargs)
        writing = mode[0] in "wxa" and Path(os.path.abspath(self)).is_relative_to(os.path.abspath(cache))
        return Counting(stream) if writing and "b" in mode else stream

    monkeypatch.setattr(pathlib.Path, "open", counting_open)
    return sizes


def test_a_get_longer_than_the_head_said_stops_there_and_says_so(hub, cache, monkeypatch):
    """The attack run: HEAD said 1 kB, GET sent 300 MB, all of it was written, and the error said "sent less"."""
    hub.lie(REPO, FILENAME, Lie(head_size=1_000, body=PAYLOAD * 100))  # 30 MB where the list says 300 kB
    written = _count_writes(monkeypatch, cache)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    manager.start(entry)
    status = manager.wait(entry, 30)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "sent more" in status.error and "less" not in status.error
    assert "1 kB" in status.error  # what it had said
    assert written and max(written) <= 1_000
    assert cached_files(cache) == []


def test_a_get_longer_than_the_model_list_allows_stops_at_the_list_size(hub, cache, monkeypatch):
    """A HEAD without a size, then an endless-looking body: the list's size (plus 5 %) caps what is written."""
    hub.lie(REPO, FILENAME, Lie(head_size=NO_SIZE, body=PAYLOAD * 100))
    written = _count_writes(monkeypatch, cache)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for(sha256=hashlib.sha256(PAYLOAD).hexdigest())
    manager.start(entry)
    status = manager.wait(entry, 30)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "sent more" in status.error and "model list" in status.error
    assert written and max(written) <= len(PAYLOAD) * 1.05
    assert cached_files(cache) == []


def test_a_head_announcing_more_than_the_list_says_is_refused_before_the_get(hub, cache):
    """A file bigger than the list says would pass the free-space check made for the list's size: refused."""
    hub.lie(REPO, FILENAME, Lie(body=PAYLOAD * 100))
    hub.add_file(REPO, FILENAME, PAYLOAD * 100)  # an honest HEAD: 30 MB
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()  # no sha256: only the size can tell
    manager.start(entry)
    status = manager.wait(entry, 30)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "30 MB" in status.error and "300 kB" in status.error and "model list" in status.error
    assert hub.requests_for("GET") == []
    assert cached_files(cache) == []


def test_a_file_far_smaller_than_the_list_says_is_not_kept(hub, cache):
    """Without a sha256, the list's size is what tells a truncated or substituted file: 1 kB for 300 kB."""
    hub.add_file(REPO, FILENAME, PAYLOAD[:1_000])  # HEAD and GET agree on 1 kB
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for()
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "failed"
    assert_one_sentence(status.error)
    assert "1 kB" in status.error and "300 kB" in status.error and "model list" in status.error
    assert cached_files(cache) == []


def test_a_hub_ignoring_the_range_of_a_resume_still_gives_the_file_within_the_cap(hub, cache, monkeypatch):
    """After a dropped connection the resume gets the whole file again (200): the file restarts, never overflows."""
    hub.lie(REPO, FILENAME, Lie(ignore_range=True))
    hub.fail_next("drop", after_bytes=100_000)
    written = _count_writes(monkeypatch, cache)
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for(sha256=hashlib.sha256(PAYLOAD).hexdigest())
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == "done", status.error
    assert Path(status.path).read_bytes() == PAYLOAD
    assert max(written) == len(PAYLOAD)
    assert [r.range is not None for r in hub.requests_for("GET")] == [False, True]


def test_the_token_is_not_sent_to_another_host_the_hub_redirects_to(cache, monkeypatch):
    """A HEAD answering 302 to another host (the Hub's CDN, or anyone's): the GET goes there without the token."""
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_of_the_user")
    with FakeHub() as hub, FakeHub() as cdn:
        hub.add_file(REPO, FILENAME, PAYLOAD)
        cdn.add_file(REPO, FILENAME, PAYLOAD)
        hub.lie(REPO, FILENAME, Lie(redirect_to=cdn.endpoint.replace("127.0.0.1", "localhost")))
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        manager = ModelDownloads(cache_dir=cache)
        entry = entry_for(sha256=hashlib.sha256(PAYLOAD).hexdigest())
        manager.start(entry)
        status = manager.wait(entry, 15)
        assert status.state == "done", status.error
        assert "hf_secret_token_of_the_user" in hub.requests_for("HEAD")[0].headers.get("authorization", "")
        assert [r.headers.get("authorization") for r in cdn.requests_for("GET")] == [None]


@pytest.mark.parametrize("head_size, ends", [(-5, "done"), (0, "failed")])
def test_a_nonsense_size_in_the_head_is_not_trusted(hub, cache, head_size, ends):
    """A negative size is no size (the list's cap holds); a zero size gives an empty file, which is refused."""
    hub.lie(REPO, FILENAME, Lie(head_size=head_size))
    manager = ModelDownloads(cache_dir=cache)
    entry = entry_for(sha256=hashlib.sha256(PAYLOAD).hexdigest())
    manager.start(entry)
    status = manager.wait(entry, 15)
    assert status.state == ends, status.error
    if ends == "failed":
        assert_one_sentence(status.error)
        assert "0 bytes" in status.error and "model list" in status.error
        assert cached_files(cache) == []
    else:
        assert Path(status.path).read_bytes() == PAYLOAD


def test_two_processes_downloading_the_same_file_at_once_both_end_with_it(hub, cache):
    """No lock files: each download writes its own temporary file and the last rename wins, with the same bytes."""
    hub.bytes_per_s = 1_000_000
    entry = entry_for(sha256=hashlib.sha256(PAYLOAD).hexdigest())
    managers = [ModelDownloads(cache_dir=cache) for _ in range(3)]  # as three app processes
    for manager in managers:
        manager.start(entry)
    statuses = [manager.wait(entry, 30) for manager in managers]
    assert [s.state for s in statuses] == ["done"] * 3, [s.error for s in statuses]
    assert len(hub.requests_for("GET")) == 3
    assert Path(statuses[0].path).read_bytes() == PAYLOAD
    assert sorted(p.name for p in cached_files(cache)) == sorted([FILENAME, hashlib.sha256(PAYLOAD).hexdigest()])
    assert not list(cache.rglob("*.lock"))
