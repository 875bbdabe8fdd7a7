"""Downloads of small GGUF chat models from the Hugging Face Hub into its cache, in background threads.

huggingface_hub does the HTTP (its HEAD, its typed errors, its retries and Range resumes in `http_get`);
this module names every file itself and adds what a page needs: a free-space check before anything is
written, progress a page can poll, a cap on the bytes written, a sha256 check before the file is put in
place, and one plain sentence for every way a download can fail.

Nothing a server says names a path: huggingface_hub's own `hf_hub_download` builds its blob and lock paths
from the server's ETag and its snapshot path from X-Repo-Commit, so a hostile HF_ENDPOINT could write, or
(through the cleanup after a checksum mismatch) delete, any file the app can (issue 24). Here the bytes go
to a temporary file the app names, in the cache's layout (`models--owner--name/blobs/<sha256>`, linked
from `snapshots/<commit>/<filename>`, so older downloads and other tools still find them); the blob is
named by the sha256 the app computed, the commit must be 40 hexadecimal digits, and every folder is proven
inside the cache (links resolved) before anything in it is created, written, replaced or deleted.
Only the app's own temporary file is ever deleted.

Notes on huggingface_hub 2.4.0 (it talks HTTP through `httpx2`, a fork of httpx):
- `http_get` resumes with a Range request when the connection breaks cleanly mid-body
  (RemoteProtocolError/ConnectError/timeouts, 5 tries, reset by progress) and rewinds the file when a
  server ignores the Range; a failed call leaves a partial file, deleted here, so a later call starts at zero;
- a HEAD that cannot connect is retried with back-off for about 20 s inside `hf_hub_download`, so the HEAD
  here is a quick one: an unreachable Hub, a missing file or a gated repo is reported at once, and nothing
  is written;
- it reads HF_ENDPOINT and HF_HUB_CACHE only at import, so both are read here at call time.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, BinaryIO, Literal, cast

import httpx2
from huggingface_hub import constants as hf_constants
from huggingface_hub import (
    get_hf_file_metadata,
    hf_hub_url,
    try_to_load_from_cache,
)
from huggingface_hub.errors import (
    GatedRepoError,
    HfHubHTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
    RemoteEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from huggingface_hub.file_download import http_get, repo_folder_name
from huggingface_hub.utils import build_hf_headers
from tqdm import tqdm

from ..errors import ConfigError, InvalidInput, MemoryLabError

logger = logging.getLogger(__name__)

MODELS_FORMAT = "memorylab.models/1"
DEFAULT_MODELS_FILE = Path(__file__).resolve().parent.parent / "data" / "models.json"
MODELS_FILE_ENV = "MEMORYLAB_MODELS_FILE"
DEFAULT_ENDPOINT = "https://huggingface.co"
SPACE_MARGIN_FRACTION = 0.05  # room for the filesystem and for what else gets written meanwhile
SPACE_MARGIN_BYTES = 100_000_000
SIZE_SLACK_FRACTION = SPACE_MARGIN_FRACTION  # lists round sizes (398000000); the space check leaves this room
HEAD_TIMEOUT_S = 10.0
HASH_BLOCK_BYTES = 1 << 20
RATE_AFTER_S = 1.0  # no time estimate before this much of the transfer has been seen

_REQUIRED = {"key": str, "label": str, "repo_id": str, "filename": str, "size_bytes": int, "license": str, "note": str}
_OPTIONAL = {"sha256": str, "context_tokens": int, "revision": str}
_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_DISK_FULL = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


@dataclass(frozen=True)
class DownloadEntry:
    """One model offered for download: where it is on the Hub and what a user should know first."""

    key: str
    label: str
    repo_id: str
    filename: str
    size_bytes: int
    license: str
    note: str
    sha256: str | None = None
    context_tokens: int = 8192
    revision: str | None = None


@dataclass(frozen=True)
class DownloadStatus:
    """Where one download stands, as a page shows it; a new object on every change."""

    state: Literal["idle", "downloading", "verifying", "done", "failed"]
    done_bytes: int = 0
    total_bytes: int = 0
    started_at: float | None = None  # time.monotonic()
    error: str | None = None  # one sentence, when failed
    path: str | None = None  # when done

    @property
    def fraction(self) -> float:
        if self.state == "done":
            return 1.0
        if self.total_bytes <= 0:
            return 0.0
        return min(max(self.done_bytes / self.total_bytes, 0.0), 1.0)

    @property
    def seconds_left(self) -> float | None:
        """Time to finish at the rate seen so far, once there is enough of it to go by."""
        if self.state != "downloading" or self.started_at is None or self.done_bytes <= 0:
            return None
        elapsed_s = time.monotonic() - self.started_at
        if elapsed_s < RATE_AFTER_S or self.total_bytes <= self.done_bytes:
            return None
        return (self.total_bytes - self.done_bytes) / (self.done_bytes / elapsed_s)

    @property
    def progress_text(self) -> str:
        if self.state == "downloading":
            text = f"{format_bytes(self.done_bytes)} of {format_bytes(self.total_bytes)}"
            left_s = self.seconds_left
            return text if left_s is None else f"{text} · {format_duration(left_s)} left"
        if self.state == "verifying":
            return f"Checking the file: {format_bytes(self.done_bytes)} of {format_bytes(self.total_bytes)}"
        if self.state == "done":
            return f"{format_bytes(self.total_bytes)}, downloaded"
        if self.state == "failed":
            return self.error or "The download failed."
        return f"{format_bytes(self.total_bytes)} to download"


def format_bytes(size_bytes: int) -> str:
    """Decimal units, as the Hub shows file sizes."""
    if size_bytes >= 1_000_000_000:
        return f"{size_bytes / 1e9:.2f} GB"
    if size_bytes >= 1_000_000:
        return f"{size_bytes / 1e6:.0f} MB"
    if size_bytes >= 1_000:
        return f"{size_bytes / 1e3:.0f} kB"
    return f"{size_bytes} bytes"


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {max(round(seconds), 1)} s"
    if seconds < 90 * 60:
        return f"about {round(seconds / 60)} min"
    return f"about {seconds / 3600:.1f} h"


# -- the list of models ------------------------------------------------------------------------


def load_download_list(path: Path | None = None) -> tuple[DownloadEntry, ...]:
    """The models offered for download, checked field by field so a bad list is refused with a sentence."""
    if path is None:
        path = (
            Path(os.environ[MODELS_FILE_ENV]).expanduser() if os.environ.get(MODELS_FILE_ENV) else DEFAULT_MODELS_FILE
        )
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"The model list {path} does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"The model list {path} cannot be read: {getattr(exc, 'strerror', None) or exc}.") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"The model list {path} is not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    if not isinstance(document, dict):
        raise InvalidInput(f'The model list {path} must be a JSON object with "format" and "models".')
    if document.get("format") != MODELS_FORMAT:
        raise InvalidInput(
            f'The model list {path} must have "format": "{MODELS_FORMAT}", not {json.dumps(document.get("format"))}.'
        )
    models = document.get("models")
    if not isinstance(models, list) or not models:
        raise InvalidInput(f'The model list {path} must have "models": a list of at least one model.')
    entries: list[DownloadEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(models, start=1):
        entry = _entry_from_json(raw, f"The model list {path}, entry {number}")
        if entry.key in seen:
            raise InvalidInput(
                f"The model list {path}, entry {number}, repeats the key {entry.key!r} of entry {seen[entry.key]}."
            )
        seen[entry.key] = number
        entries.append(entry)
    return tuple(entries)


def _entry_from_json(raw: Any, where: str) -> DownloadEntry:
    if not isinstance(raw, dict):
        raise InvalidInput(f"{where} must be a JSON object.")
    if isinstance(raw.get("key"), str) and raw["key"].strip():
        where = f"{where} ({raw['key']!r})"
    unknown = sorted(set(raw) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise InvalidInput(
            f"{where} has unknown field(s) {', '.join(unknown)}; "
            f"the known ones are {', '.join([*_REQUIRED, *_OPTIONAL])}."
        )
    fields: dict[str, Any] = {}
    for name, kind in _REQUIRED.items():
        if name not in raw:
            raise InvalidInput(f"{where} is missing the field {name!r}.")
        fields[name] = _checked(raw[name], name, kind, where)
    for name, kind in _OPTIONAL.items():
        if raw.get(name) is not None:
            fields[name] = _checked(raw[name], name, kind, where)
    if not _KEY.match(fields["key"]):
        raise InvalidInput(f"{where} has the key {fields['key']!r}; use letters, digits, '.', '_' and '-' only.")
    owner, _, name = fields["repo_id"].partition("/")
    if not owner or not name or "/" in name:
        raise InvalidInput(f'{where} has repo_id {fields["repo_id"]!r}; it must look like "owner/name".')
    filename = fields["filename"]
    if not filename.lower().endswith(".gguf"):
        raise InvalidInput(f"{where} has filename {filename!r}; only .gguf files can be downloaded.")
    if filename.startswith("/") or "\\" in filename or ".." in filename.split("/"):
        raise InvalidInput(f"{where} has filename {filename!r}; it must be a path inside the repository.")
    revision = fields.get("revision")
    if revision is not None and (revision.startswith("/") or "\\" in revision or ".." in revision.split("/")):
        raise InvalidInput(f"{where} has revision {revision!r}; it must be a commit, branch or tag name.")
    if fields["size_bytes"] <= 0:
        raise InvalidInput(f"{where} has size_bytes {fields['size_bytes']}; it must be the file's size, above 0.")
    if "sha256" in fields:
        if not _SHA256.match(fields["sha256"]):
            raise InvalidInput(f"{where} has sha256 {fields['sha256']!r}; it must be 64 hexadecimal digits.")
        fields["sha256"] = fields["sha256"].lower()
    if "context_tokens" in fields and fields["context_tokens"] < 256:
        raise InvalidInput(f"{where} has context_tokens {fields['context_tokens']}; it must be at least 256.")
    return DownloadEntry(**fields)


def _checked(value: Any, name: str, kind: type, where: str) -> Any:
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{where} has {name} {json.dumps(value)}; it must be a whole number.")
        return value
    if not isinstance(value, str) or not value.strip():
        raise InvalidInput(f"{where} has {name} {json.dumps(value)}; it must be a non-empty string.")
    return value.strip()


# -- where files are -----------------------------------------------------------------------------


def cache_folder(cache_dir: str | Path | None = None) -> Path:
    """The Hugging Face cache this process uses now (huggingface_hub fixed its own choice at import)."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser() / "hub"
    return Path(hf_constants.HF_HUB_CACHE).expanduser()


def hub_endpoint() -> str:
    """HF_ENDPOINT as set now (huggingface_hub read it once, at import)."""
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def downloaded_path(entry: DownloadEntry, *, cache_dir: str | Path | None = None) -> Path | None:
    """The complete, checked file in the Hugging Face cache, or None; never touches the network."""
    found = _cached_file(entry, cache_folder(cache_dir))
    if found is None:
        return None
    if entry.sha256 is not None and not _named_by(found, entry.sha256) and _sha256_of(found) != entry.sha256:
        return None
    return found


def _cached_file(entry: DownloadEntry, folder: Path) -> Path | None:
    """The cached file, only when it (links followed) is a file inside the cache: a ref may name any path."""
    try:
        found = try_to_load_from_cache(entry.repo_id, entry.filename, cache_dir=str(folder), revision=entry.revision)
        if not isinstance(found, str):
            return None
        real = Path(found).resolve()
        if not real.is_relative_to(folder.resolve()):
            logger.warning("Ignoring %s: it leads outside the cache %s", found, folder)
            return None
    except (OSError, RuntimeError):  # RuntimeError: a loop of links
        return None
    return Path(found)


def _named_by(path: Path, sha256: str) -> bool:
    """The Hub names an LFS blob by its sha256, and huggingface_hub moves only complete blobs into place."""
    return Path(os.path.realpath(path)).name == sha256


def _sha256_of(path: Path, on_bytes: Callable[[int], None] | None = None) -> str | None:
    digest = hashlib.sha256()
    done_bytes = 0
    try:
        with open(path, "rb") as stream:
            while block := stream.read(HASH_BLOCK_BYTES):
                digest.update(block)
                done_bytes += len(block)
                if on_bytes is not None and done_bytes % (64 * HASH_BLOCK_BYTES) < HASH_BLOCK_BYTES:
                    on_bytes(done_bytes)
    except OSError:
        return None
    return digest.hexdigest()


def _proven_inside(folder: Path, wanted: Path) -> Path:
    """`wanted` resolved (links followed), or a sentence when that leads outside the cache folder."""
    try:
        real = wanted.resolve()
    except RuntimeError:  # a loop of links
        real = Path(os.path.abspath(wanted))
    if not real.is_relative_to(folder.resolve()):
        raise ConfigError(
            f"The Hugging Face cache {folder} holds a link that leads outside it ({wanted} goes to {real}), "
            f"so nothing was downloaded; remove the link and press Download again."
        )
    return real


def _folder_inside(folder: Path, wanted: Path) -> Path:
    """`wanted`, a folder under the cache, created once proven inside it, and proven again once it exists."""
    _proven_inside(folder, wanted).mkdir(parents=True, exist_ok=True)
    return _proven_inside(folder, wanted)


class _SentTooMuch(Exception):
    """A server sent more bytes than the download may hold; the sentence is made where the limit was chosen."""


class _CappedFile:
    """A file that refuses to grow past `max_bytes`: a server may send more than it said (issue 24)."""

    def __init__(self, stream: BinaryIO, max_bytes: int) -> None:
        self._stream = stream
        self.max_bytes = max_bytes

    def write(self, data: bytes) -> int:
        if self._stream.tell() + len(data) > self.max_bytes:
            raise _SentTooMuch()
        return self._stream.write(data)

    def __getattr__(self, name: str) -> Any:  # seek, tell, truncate: http_get rewinds when a Range is ignored
        return getattr(self._stream, name)


def max_download_bytes(entry: DownloadEntry) -> int:
    """The most a download of `entry` may write: the list's size, plus the slack a rounded size needs."""
    return int(entry.size_bytes * (1 + SIZE_SLACK_FRACTION))


def _free_bytes(folder: Path) -> int | None:
    """Free space where the folder is, or would be once created."""
    for candidate in (folder, *folder.parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:
            continue
    return None


def space_needed_bytes(size_bytes: int) -> int:
    return int(size_bytes * (1 + SPACE_MARGIN_FRACTION)) + SPACE_MARGIN_BYTES


def _space_shortfall(entry: DownloadEntry, size_bytes: int, folder: Path) -> str | None:
    free = _free_bytes(folder)
    needed = space_needed_bytes(size_bytes)
    if free is None or free >= needed:
        return None
    return (
        f"{entry.label} needs {format_bytes(needed)} of free disk space in {folder} "
        f"(the file is {format_bytes(size_bytes)}), but only {format_bytes(free)} is free; "
        f"free some space and press Download again."
    )


# -- downloads -----------------------------------------------------------------------------------


def _progress_class(report: Callable[[int], None]) -> type[tqdm]:
    """A silent tqdm that hands byte counts to `report`; its total (a server's Content-Length) is not shown."""

    class DownloadProgress(tqdm):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True
            super().__init__(*args, **kwargs)
            self.done_bytes = int(kwargs.get("initial") or 0)
            report(self.done_bytes)

        def update(self, n: float | None = 1) -> bool | None:
            self.done_bytes += int(n or 0)  # negative when a server ignored a Range and the file restarts
            report(self.done_bytes)
            return True

    return DownloadProgress


class ModelDownloads:
    """Downloads running in background threads of this process; a page only polls their status."""

    def __init__(self, *, cache_dir: str | Path | None = None, head_timeout_s: float = HEAD_TIMEOUT_S):
        self.cache_dir = cache_dir
        self.head_timeout_s = head_timeout_s
        self._lock = threading.Lock()
        self._statuses: dict[DownloadEntry, DownloadStatus] = {}
        self._threads: dict[DownloadEntry, threading.Thread] = {}
        self._checked: dict[str, tuple[int, int]] = {}  # real path -> (size, mtime_ns) of files hashed already

    def start(self, entry: DownloadEntry) -> DownloadStatus:
        """Begin a download in the background; returns at once, and does nothing new while one runs."""
        with self._lock:
            if self._running(entry):
                return self._statuses[entry]
        folder = cache_folder(self.cache_dir)
        path = self._complete_file(entry, folder)
        if path is not None:
            return self._done(entry, path)
        shortfall = _space_shortfall(entry, entry.size_bytes, folder)
        with self._lock:
            if self._running(entry):
                return self._statuses[entry]
            if shortfall is not None:
                status = DownloadStatus("failed", total_bytes=entry.size_bytes, error=shortfall)
                self._statuses[entry] = status
                return status
            status = DownloadStatus("downloading", total_bytes=entry.size_bytes, started_at=time.monotonic())
            self._statuses[entry] = status
            thread = threading.Thread(
                target=self._run, args=(entry, folder, hub_endpoint()), name=f"download {entry.key}", daemon=True
            )
            self._threads[entry] = thread
            thread.start()
        return status

    def status(self, entry: DownloadEntry) -> DownloadStatus:
        """Where the download stands; "done" also when the file was in the cache already."""
        with self._lock:
            current = self._statuses.get(entry)
            if current is not None and current.state in ("downloading", "verifying"):
                return current
        path = self._complete_file(entry, cache_folder(self.cache_dir))
        if path is not None:
            return self._done(entry, path)
        if current is not None and current.state == "failed":
            return current
        return DownloadStatus("idle", total_bytes=entry.size_bytes)

    def wait(self, entry: DownloadEntry, timeout_s: float) -> DownloadStatus:
        """Block until the download ends or `timeout_s` passes (for tests and scripts)."""
        with self._lock:
            thread = self._threads.get(entry)
        if thread is not None:
            thread.join(timeout_s)
        return self.status(entry)

    # -- inside --------------------------------------------------------------------------------

    def _running(self, entry: DownloadEntry) -> bool:
        thread = self._threads.get(entry)
        return thread is not None and thread.is_alive()

    def _done(self, entry: DownloadEntry, path: Path) -> DownloadStatus:
        try:
            size_bytes = path.stat().st_size
        except OSError:
            size_bytes = entry.size_bytes
        return DownloadStatus("done", done_bytes=size_bytes, total_bytes=size_bytes, path=str(path))

    def _complete_file(self, entry: DownloadEntry, folder: Path) -> Path | None:
        """Like downloaded_path, but a file hashed once is not hashed again while it is unchanged."""
        found = _cached_file(entry, folder)
        if found is None or entry.sha256 is None or _named_by(found, entry.sha256):
            return found
        real = os.path.realpath(found)
        try:
            stat = os.stat(real)
        except OSError:
            return None
        with self._lock:
            if self._checked.get(real) == (stat.st_size, stat.st_mtime_ns):
                return found
        if _sha256_of(found) != entry.sha256:
            return None
        with self._lock:
            self._checked[real] = (stat.st_size, stat.st_mtime_ns)
        return found

    def _update(self, entry: DownloadEntry, **changes: Any) -> None:
        with self._lock:
            self._statuses[entry] = replace(self._statuses[entry], **changes)

    def _report(self, entry: DownloadEntry) -> Callable[[int], None]:
        def report(done_bytes: int) -> None:
            with self._lock:
                current = self._statuses[entry]
                if current.state == "downloading":
                    self._statuses[entry] = replace(current, done_bytes=max(done_bytes, 0))

        return report

    def _run(self, entry: DownloadEntry, folder: Path, endpoint: str) -> None:
        """The thread: download, check, and end in "done" or "failed" with a sentence; never raises."""
        try:
            path = self._fetch(entry, folder, endpoint)
        except MemoryLabError as exc:
            self._fail(entry, exc.message)
        except (httpx2.HTTPError, OSError, ValueError) as exc:  # HfHubHTTPError is both of the first two
            with self._lock:
                done_bytes = self._statuses[entry].done_bytes
            self._fail(entry, explain_failure(exc, entry, endpoint=endpoint, folder=folder, done_bytes=done_bytes))
        except Exception as exc:  # last resort: a dead thread would leave "downloading" forever
            logger.exception("Unexpected failure downloading %s", entry.key)
            self._fail(
                entry,
                f"The download of {entry.label} failed unexpectedly ({type(exc).__name__}); "
                f"press Download again to retry.",
            )
        else:
            status = self._done(entry, path)
            with self._lock:
                self._statuses[entry] = replace(status, started_at=self._statuses[entry].started_at)

    def _fail(self, entry: DownloadEntry, sentence: str) -> None:
        with self._lock:
            self._statuses[entry] = DownloadStatus("failed", total_bytes=entry.size_bytes, error=sentence)

    def _fetch(self, entry: DownloadEntry, folder: Path, endpoint: str) -> Path:
        """Download into a file the app names, check it, and link it into the cache; returns the snapshot path."""
        # A quick HEAD first: huggingface_hub would retry an unreachable Hub for ~20 s.
        url = hf_hub_url(entry.repo_id, entry.filename, revision=entry.revision, endpoint=endpoint)
        metadata = get_hf_file_metadata(url, timeout=self.head_timeout_s, endpoint=endpoint)
        pinned = entry.revision is not None and _COMMIT.match(entry.revision) is not None
        commit = entry.revision if pinned else metadata.commit_hash
        if commit is None or not _COMMIT.match(commit):
            raise ConfigError(
                f"The server at {endpoint} does not answer like the Hugging Face Hub "
                f"(no commit hash in its X-Repo-Commit header); check HF_ENDPOINT."
            )
        hub = f"The Hugging Face Hub at {endpoint}"
        said_bytes = metadata.size if metadata.size is not None and metadata.size >= 0 else None
        max_bytes = max_download_bytes(entry)
        if said_bytes is not None and said_bytes > max_bytes:
            raise MemoryLabError(
                f"{hub} says {entry.filename} is {format_bytes(said_bytes)}, more than the "
                f"{format_bytes(entry.size_bytes)} the model list gives, so nothing was downloaded; "
                f"the model list is probably out of date."
            )
        if said_bytes is not None:
            max_bytes = said_bytes  # what the Hub said, within what the list allows
        self._update(entry, total_bytes=max_bytes if said_bytes is not None else entry.size_bytes)
        storage = folder / repo_folder_name(repo_id=entry.repo_id, repo_type="model")
        blobs = _folder_inside(folder, storage / "blobs")
        partial = blobs / f"{entry.key}.{uuid.uuid4().hex}.incomplete"
        headers = build_hf_headers()
        headers["Accept-Encoding"] = "identity"  # the bytes counted are the bytes on disk
        try:
            with partial.open("xb") as stream:  # "x": never through a link planted at this name
                try:
                    http_get(  # redirects (the Hub's CDN) are followed; the token is not sent to another host
                        url,
                        cast(BinaryIO, _CappedFile(stream, max_bytes)),
                        headers=headers,
                        expected_size=said_bytes,
                        displayed_filename=entry.filename,
                        tqdm_class=_progress_class(self._report(entry)),
                    )
                except _SentTooMuch:
                    said = "it said" if said_bytes is not None else "the model list allows"
                    raise MemoryLabError(
                        f"{hub} sent more of {entry.label} than the {format_bytes(max_bytes)} {said}, "
                        f"so the download was stopped there and nothing was kept."
                    ) from None
            digest = self._checked_digest(entry, partial, hub)
            os.replace(partial, blobs / digest)
        finally:
            partial.unlink(missing_ok=True)  # the app's own temporary file, and only it
        pointer = storage / "snapshots" / commit / entry.filename
        self._link(folder, pointer, blobs / digest)
        if not pinned:
            self._write_ref(folder, storage / "refs" / (entry.revision or "main"), commit)
        return pointer

    def _checked_digest(self, entry: DownloadEntry, path: Path, hub: str) -> str:
        """The file's sha256, which names its blob; a file far smaller than the list says, or with another
        sha256, is refused."""
        size_bytes = path.stat().st_size
        if size_bytes < entry.size_bytes * (1 - SIZE_SLACK_FRACTION):
            raise MemoryLabError(
                f"{hub} sent {format_bytes(size_bytes)} of {entry.label}, far less than the "
                f"{format_bytes(entry.size_bytes)} the model list gives, so nothing was kept; "
                f"the model list is probably out of date."
            )
        self._update(entry, state="verifying", done_bytes=0, total_bytes=size_bytes)
        actual = _sha256_of(path, on_bytes=lambda n: self._update(entry, done_bytes=n))
        if actual is None:
            raise MemoryLabError(
                f"The downloaded {entry.filename} could not be read back to check it, "
                f"so it was deleted; press Download again."
            )
        if entry.sha256 is not None and actual != entry.sha256:
            raise MemoryLabError(
                f"The downloaded {entry.filename} does not match the sha256 in the model list "
                f"(got {actual[:12]}…, expected {entry.sha256[:12]}…), so it was deleted; "
                f"the file on the Hub has probably changed."
            )
        return actual

    def _link(self, folder: Path, pointer: Path, blob: Path) -> None:
        """Point the snapshot entry at the blob, replacing whatever entry (even a link) had that name."""
        parent = _folder_inside(folder, pointer.parent)
        staged = parent / f".{pointer.name}.{uuid.uuid4().hex}.link"
        try:
            staged.symlink_to(os.path.relpath(blob, parent))
            os.replace(staged, parent / pointer.name)
        finally:
            staged.unlink(missing_ok=True)

    def _write_ref(self, folder: Path, ref: Path, commit: str) -> None:
        """Record which commit a branch or tag named, as huggingface_hub does, so it finds the file too."""
        parent = _folder_inside(folder, ref.parent)
        staged = parent / f".{ref.name}.{uuid.uuid4().hex}.tmp"
        try:
            with staged.open("x", encoding="ascii") as stream:
                stream.write(commit)
            os.replace(staged, parent / ref.name)
        finally:
            staged.unlink(missing_ok=True)


def explain_failure(
    exc: BaseException, entry: DownloadEntry, *, endpoint: str, folder: Path, done_bytes: int = 0
) -> str:
    """One sentence a person can act on, for an error huggingface_hub, httpx2 or the disk raised."""
    hub = f"the Hugging Face Hub at {endpoint}"
    Hub = f"The Hugging Face Hub at {endpoint}"  # the same words, opening a sentence
    file = f"{entry.repo_id}/{entry.filename}"
    while isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        exc = exc.__cause__  # "not in the cache either": the reason is the HEAD's own error
    arrived = (
        f"after {format_bytes(done_bytes)} of {format_bytes(entry.size_bytes)} of {entry.label}"
        if done_bytes > 0
        else f"while downloading {entry.label}"
    )
    broke = f"The connection to {hub} broke {arrived}; nothing was kept, press Download again to retry."
    if isinstance(exc, GatedRepoError):
        return (
            f"The repository {entry.repo_id} on {hub} is gated: accept its terms on the model page, log in with "
            f"`hf auth login` (or set HF_TOKEN) and press Download again."
        )
    if isinstance(exc, RepositoryNotFoundError):
        return (
            f"There is no repository {entry.repo_id} on {hub} (or it is private), so {entry.filename} "
            "cannot be downloaded."
        )
    if isinstance(exc, RevisionNotFoundError):
        return f"The repository {entry.repo_id} on {hub} has no revision {entry.revision or 'main'}."
    if isinstance(exc, RemoteEntryNotFoundError):
        return f"The repository {entry.repo_id} on {hub} has no file {entry.filename}; the model list is out of date."
    if isinstance(exc, HfHubHTTPError):
        code = exc.response.status_code if exc.response is not None else 0
        if code in (401, 403):
            return (
                f"{Hub} refused access to {file} (HTTP {code}); log in with "
                f"`hf auth login` or set HF_TOKEN, then press Download again."
            )
        if code == 404:
            return f"{Hub} has no file {file}; the model list is out of date."
        if code == 429:
            return f"{Hub} is limiting downloads (HTTP 429); wait a few minutes and press Download again."
        return f"{Hub} answered HTTP {code} for {file}; try again later."
    if isinstance(exc, OfflineModeIsEnabled):
        return f"Downloads are switched off because HF_HUB_OFFLINE is set; unset it to download {entry.label}."
    if isinstance(exc, httpx2.ProxyError):
        return f"The proxy refused the connection to {hub}; check HTTPS_PROXY and press Download again."
    if isinstance(exc, httpx2.TimeoutException):
        if done_bytes > 0:
            return (
                f"{Hub} stopped sending {entry.label} after {format_bytes(done_bytes)}; "
                f"nothing was kept, press Download again to retry."
            )
        return f"{Hub} did not answer in time; check the connection and press Download again."
    if isinstance(exc, httpx2.ConnectError) and done_bytes <= 0:
        return f"Cannot reach {hub}; check the internet connection (or HF_ENDPOINT) and press Download again."
    if isinstance(exc, httpx2.TransportError):
        return broke
    if isinstance(exc, httpx2.HTTPError):
        return f"The download of {entry.label} from {hub} failed ({type(exc).__name__}); press Download again to retry."
    if isinstance(exc, OSError):
        if exc.errno in _DISK_FULL:
            return (
                f"The disk holding {folder} filled up while downloading {entry.label}; free at least "
                f"{format_bytes(space_needed_bytes(entry.size_bytes))} and press Download again."
            )
        if isinstance(exc, PermissionError) or exc.errno == errno.EROFS:
            return f"Cannot write to {folder} ({exc.strerror}); point HF_HUB_CACHE at a writable folder."
        if "Consistency check failed" in str(exc):
            return (
                f"{Hub} sent less of {entry.label} than it announced; nothing was kept, press Download again to retry."
            )
        return f"Cannot save {entry.label} in {folder}: {exc.strerror or str(exc).splitlines()[0]}."
    first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{entry.label} cannot be downloaded: {first_line.rstrip('.')}."


__all__ = [
    "DEFAULT_MODELS_FILE",
    "MODELS_FORMAT",
    "DownloadEntry",
    "DownloadStatus",
    "ModelDownloads",
    "cache_folder",
    "downloaded_path",
    "explain_failure",
    "format_bytes",
    "hub_endpoint",
    "load_download_list",
    "max_download_bytes",
]
