"""Model files: resolved from an explicit path, then the cache, then a verified download.

A file enters the cache only after its checksum matched: it is downloaded to a temporary
name beside its final place and renamed atomically, so an interrupted or corrupt transfer
never leaves anything that a later run could mistake for the real file.
"""

from __future__ import annotations

import hashlib
import os
import re
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import AvvpError
from .paths import atomic_write, cache_home

CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightFile:
    """One downloadable model file and how to verify it.

    ``sha256_prefix``: leading hex digits of the SHA-256 (torch.hub's file-name convention);
    ``git_blob_sha1``: the git object id of the file (SHA-1 of ``b"blob <size>\\0" + data``),
    which is how a file in a git repository is pinned.
    """

    name: str
    filename: str
    url: str
    sha256_prefix: str | None = None
    git_blob_sha1: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not (self.sha256_prefix or self.git_blob_sha1):
            raise ValueError(f"{self.name}: a weight file needs a checksum")


def hub_file(name: str, url: str, description: str = "") -> WeightFile:
    """A torch.hub-style URL whose file name ends in ``-<sha256 prefix>.<ext>``."""
    filename = url.rsplit("/", 1)[-1]
    m = re.search(r"-([a-f0-9]{6,})\.", filename)
    if not m:
        raise ValueError(f"{url}: no hash in the file name")
    return WeightFile(name, filename, url, sha256_prefix=m.group(1), description=description)


HAN_COMMIT = "fde56118f2c2e7c19188dfefa2569a37b70054fe"
HAN_OFFICIAL = WeightFile(
    "han",
    "MMIL_Net.pt",
    f"https://github.com/YapengTian/AVVP-ECCV20/raw/{HAN_COMMIT}/models/MMIL_Net.pt",
    git_blob_sha1="ef441b4279b7272f6509d6c9f8bc6d522e9145ed",
    description="official HAN checkpoint (AVVP-ECCV20, models/MMIL_Net.pt)",
)
VGGISH = hub_file(
    "vggish",
    "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish-10086976.pth",
    "VGGish, PyTorch port of the TensorFlow AudioSet release (harritaylor/torchvggish)",
)
VGGISH_PCA = hub_file(
    "vggish_pca",
    "https://github.com/harritaylor/torchvggish/releases/download/v0.1/vggish_pca_params-970ea276.pth",
    "VGGish PCA/whitening parameters of the AudioSet release",
)


def torchvision_file(name: str, weights) -> WeightFile:
    """A torchvision weights enum member, with torchvision's own URL and hash."""
    return hub_file(name, weights.url, f"torchvision {weights}")


def file_digests(path: Path) -> tuple[str, str]:
    """(sha256 hex, git blob sha1 hex) in one pass."""
    size = path.stat().st_size
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
            blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest()


def verify(path: Path, spec: WeightFile) -> str | None:
    """None when the file matches its checksum, else what is wrong."""
    sha256, blob = file_digests(path)
    if spec.sha256_prefix and not sha256.startswith(spec.sha256_prefix):
        return f"sha256 {sha256[:12]}... does not start with {spec.sha256_prefix}"
    if spec.git_blob_sha1 and blob != spec.git_blob_sha1:
        return f"git blob id {blob} is not {spec.git_blob_sha1}"
    return None


def weights_dir() -> Path:
    return cache_home() / "weights"


def cached_path(spec: WeightFile) -> Path:
    return weights_dir() / spec.filename


def download(spec: WeightFile, dest: Path, timeout: float = 30.0, progress: bool = True) -> Path:
    """Fetch ``spec.url`` into a temporary file beside ``dest``; verify, then rename."""

    def fetch(tmp: str) -> None:
        try:
            response = urllib.request.urlopen(spec.url, timeout=timeout)
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise AvvpError(f"cannot download {spec.name} from {spec.url}: {reason}") from None
        with response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            received = _copy(response, out, total, f"downloading {spec.filename}", progress)
        if total is not None and received != total:
            raise AvvpError(f"download of {spec.name} from {spec.url} was cut off at {received} of {total} bytes")
        problem = verify(Path(tmp), spec)
        if problem:
            raise AvvpError(f"download of {spec.name} from {spec.url} is corrupt ({problem}); nothing was cached")

    try:
        return atomic_write(dest, fetch, suffix=".part")
    except (OSError, TimeoutError) as exc:
        raise AvvpError(f"download of {spec.name} from {spec.url} failed: {exc}") from None


def _copy(response, out, total: int | None, desc: str, progress: bool) -> int:
    from .progress import progress_enabled, stderr_console

    received = 0
    if progress and progress_enabled():
        from rich.progress import DownloadColumn, Progress, TransferSpeedColumn

        with Progress(*Progress.get_default_columns(), DownloadColumn(), TransferSpeedColumn(),
                      console=stderr_console(), transient=True) as bar:
            task = bar.add_task(desc, total=total)
            while chunk := response.read(CHUNK):
                out.write(chunk)
                received += len(chunk)
                bar.update(task, advance=len(chunk))
        return received
    while chunk := response.read(CHUNK):
        out.write(chunk)
        received += len(chunk)
    return received


def offline() -> bool:
    return os.environ.get("AVVP_STREAM_OFFLINE", "") not in ("", "0")


def resolve(spec: WeightFile, explicit: str | os.PathLike | None = None, allow_download: bool | None = None) -> Path:
    """The path of a verified copy of ``spec``: ``explicit`` if given (verified), else
    the cache, else a download into the cache (unless offline)."""
    return resolve_all([(spec, explicit)], allow_download)[0]


def resolve_all(items, allow_download: bool | None = None) -> list[Path]:
    """Resolve several files at once, so that an offline user learns of every missing file
    (its URL and where to put it) in one message."""
    if allow_download is None:
        allow_download = not offline()
    paths: list[Path | None] = []
    missing: list[WeightFile] = []
    for spec, explicit in items:
        if explicit is not None:
            path = Path(explicit)
            if not path.is_file():
                raise AvvpError(f"{spec.name} weights not found: {path}")
            problem = verify(path, spec)
            if problem:
                raise AvvpError(f"{path}: not the expected {spec.name} weights ({problem})")
            paths.append(path)
            continue
        cached = cached_path(spec)
        if cached.is_file():
            problem = verify(cached, spec)
            if problem is None:
                paths.append(cached)
                continue
            cached.unlink()  # a damaged cache entry is never used; fetch it again
        paths.append(None)
        missing.append(spec)
    if missing and not allow_download:
        listing = "; ".join(f"{s.name}: {s.url} -> {cached_path(s)}" for s in missing)
        raise AvvpError(f"offline and not cached: {listing} (download each URL to the path shown, or pass its path)")
    failures = []
    for i, (spec, _) in enumerate(items):
        if paths[i] is None:
            try:
                paths[i] = download(spec, cached_path(spec))
            except AvvpError as exc:
                failures.append(f"{exc} -> put it at {cached_path(spec)}")
    if failures:
        raise AvvpError("; ".join(failures))
    return paths  # type: ignore[return-value]
