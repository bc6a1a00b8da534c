"""Transfer-complete gate for night folders, and the monitor's smart re-check interval.

Framework-free (no Django): pure functions over folder listings, file bytes and an injected clock,
so the rules can be tested without a database and reused by any scheduler.

Why a gate at all: night folders arrive by GridFTP/rsync/tar extraction (reference 7dt-raw-data.md
section 4). A folder that is read while it is still being written would be catalogued with missing
or truncated files. A folder counts as *transfer-complete* when

1. its fingerprint (file count, total bytes, newest mtime) has not changed for a quiet period,
   measured from the monitor's own observations, never from file mtimes alone (tar restores old
   mtimes while it is still extracting);
2. no rsync/part temporary is present (rsync writes ``.<name>.XXXXXX`` and renames at the end);
3. every FITS file not yet catalogued is structurally complete: its size equals the sum over its
   HDUs of header + data padded to 2880 bytes (a file still growing is shorter).

A file that stays incomplete for longer than a grace period is no longer "being written": it stops
blocking its folder, and the ingest records it as a ``truncated`` problem.
"""
from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from rawdata.folders import parse_folder_name, parse_unit_dir
from rawdata.header import BLOCK, EMPTY, NO_END, TRUNCATED_HEADER, UNREADABLE, HeaderError, parse_header, read_header_bytes
from rawdata.scan import FileEntry, FolderListing, is_rsync_temporary

__all__ = [
    "COMPLETE",
    "INCOMPLETE",
    "INVALID",
    "FileCheck",
    "Fingerprint",
    "FolderCompleteness",
    "SmartInterval",
    "check_files",
    "first_change_estimate",
    "fits_completeness",
    "is_transfer_temporary",
    "probe_signature",
    "quiet_remaining",
    "split_temporaries",
]

COMPLETE = "complete"
INCOMPLETE = "incomplete"  # shorter than its headers announce: still being written, or a cut transfer
INVALID = "invalid"  # not readable as FITS at all: not a transfer state, the ingest records the problem

MAX_HDUS = 64
MAX_HEADER_BLOCKS = 200


# ------------------------------------------------------------------------------------ fingerprints


@dataclass(frozen=True)
class Fingerprint:
    """What one ``scandir`` says about a folder; it changes whenever a transfer is active."""

    file_count: int
    total_bytes: int
    newest_mtime_ns: int

    @classmethod
    def from_listing(cls, listing: FolderListing) -> Fingerprint:
        return cls(len(listing.files), listing.total_bytes, listing.newest_mtime_ns)

    def __str__(self) -> str:
        # Same text as FolderListing.fingerprint(): the ingest stores it as ingested_fingerprint.
        return f"{self.file_count}:{self.total_bytes}:{self.newest_mtime_ns}"


def first_change_estimate(listing: FolderListing, dir_mtime_ns: int, now: float) -> float:
    """When a folder seen for the first time last changed (epoch seconds), never later than ``now``.

    The newest of the file mtimes and the folder's own mtime: a file being written has a fresh
    mtime, and while tar or rsync is still adding files the folder mtime is fresh (tar restores it
    only at the very end). A folder moved in whole after a finished transfer has old mtimes and
    does not have to wait a quiet period again; the completeness check still applies.
    """
    newest = max(listing.newest_mtime_ns, dir_mtime_ns) / 1e9
    return min(newest, now)


def quiet_remaining(changed_at: float, quiet_s: float, now: float) -> float:
    """Seconds until a folder last changed at ``changed_at`` has been quiet for ``quiet_s`` (<= 0: quiet)."""
    return quiet_s - (now - changed_at)


# ------------------------------------------------------------------------------------ temporaries


def is_transfer_temporary(name: str) -> bool:
    """rsync's ``.<name>.XXXXXX`` and ``.part``/``.tmp``/``~``/``.filepart`` files of other tools."""
    return is_rsync_temporary(name)


def split_temporaries(folder: str, names: Iterable[str], now: float, grace_s: float) -> tuple[list[str], list[str]]:
    """(active, stale) temporaries of a folder; stale ones have not been touched for ``grace_s``.

    An active temporary means a transfer is running. A stale one is debris of a transfer that died
    (rsync --partial, a killed GridFTP): it must not block the folder forever.
    """
    active, stale = [], []
    for name in sorted(names):
        try:
            mtime = os.stat(os.path.join(folder, name), follow_symlinks=False).st_mtime
        except FileNotFoundError:
            continue  # renamed to its final name meanwhile: the fingerprint will show it
        except OSError:
            mtime = now
        (stale if now - mtime >= grace_s else active).append(name)
    return active, stale


# ------------------------------------------------------------------------------------ FITS structure


@dataclass(frozen=True)
class FileCheck:
    """Structural completeness of one file."""

    name: str
    status: str  # COMPLETE | INCOMPLETE | INVALID
    size: int
    expected_size: int | None = None
    detail: str = ""
    mtime_ns: int = 0


def _read_extension_header(fh, offset: int) -> bytes | None:
    """Header blocks of the HDU starting at ``offset`` (through its END card); None if the file ends first."""
    fh.seek(offset)
    buf = b""
    for _ in range(MAX_HEADER_BLOCKS):
        block = fh.read(BLOCK)
        if len(block) < BLOCK:
            return None
        buf += block
        try:
            parse_header(buf)
            return buf
        except HeaderError as exc:
            if exc.reason != NO_END:
                raise
    raise HeaderError(NO_END, f"no END card in the first {MAX_HEADER_BLOCKS} blocks of the HDU at byte {offset}")


def fits_completeness(path: str | os.PathLike[str], size: int | None = None, *, name: str | None = None) -> FileCheck:
    """Is this file as long as its headers say? Walks every HDU: header + data padded to 2880.

    Only the headers are read (never pixel data). Bytes after the last complete HDU that do not start
    another HDU are left to the ingest to judge: they do not mean the transfer is still running.
    """
    label = name or os.path.basename(os.fspath(path))
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return FileCheck(label, INCOMPLETE, 0, None, "vanished while checked (renamed by a transfer?)")
    except OSError as exc:
        return FileCheck(label, INVALID, 0, None, f"cannot stat: {exc}")
    size = st.st_size if size is None else size
    mtime_ns = st.st_mtime_ns
    try:
        header = parse_header(read_header_bytes(path))
    except HeaderError as exc:
        if exc.reason in (EMPTY, TRUNCATED_HEADER):
            return FileCheck(label, INCOMPLETE, size, None, f"{exc.reason}: {exc.detail}", mtime_ns)
        if exc.reason == UNREADABLE and not os.path.exists(path):
            return FileCheck(label, INCOMPLETE, size, None, "vanished while checked", mtime_ns)
        return FileCheck(label, INVALID, size, None, f"{exc.reason}: {exc.detail}", mtime_ns)
    offset = header.expected_size
    try:
        with open(path, "rb") as fh:
            for _ in range(MAX_HDUS):
                if offset >= size:
                    break
                fh.seek(offset)
                start = fh.read(8)
                if not b"XTENSION".startswith(start):
                    break  # trailing bytes that are no HDU: for the ingest to judge, not a transfer state
                ext = _read_extension_header(fh, offset)
                if ext is None:
                    return FileCheck(label, INCOMPLETE, size, None, f"extension header at byte {offset} is cut", mtime_ns)
                offset += parse_header(ext).expected_size
    except HeaderError as exc:
        return FileCheck(label, INVALID, size, None, f"extension: {exc}", mtime_ns)
    except OSError as exc:
        return FileCheck(label, INVALID, size, None, f"cannot read: {exc}", mtime_ns)
    if size < offset:
        return FileCheck(label, INCOMPLETE, size, offset, f"{size} of {offset} bytes", mtime_ns)
    return FileCheck(label, COMPLETE, size, offset, "", mtime_ns)


@dataclass
class FolderCompleteness:
    """Result of checking the not-yet-catalogued files of one folder."""

    checked: int = 0
    blocking: list[FileCheck] = field(default_factory=list)  # incomplete and recently written
    stale: list[FileCheck] = field(default_factory=list)  # incomplete for longer than the grace period
    invalid: list[FileCheck] = field(default_factory=list)  # not FITS: the ingest records a problem

    @property
    def complete(self) -> bool:
        return not self.blocking


def check_files(folder: str, entries: Iterable[FileEntry], *, now: float, grace_s: float) -> FolderCompleteness:
    """Check the given files of ``folder``; incomplete files younger than ``grace_s`` block it."""
    out = FolderCompleteness()
    for entry in entries:
        check = fits_completeness(os.path.join(folder, entry.name), entry.size, name=entry.name)
        out.checked += 1
        if check.status == INCOMPLETE:
            age = now - max(entry.mtime_ns, check.mtime_ns) / 1e9
            (out.stale if age >= grace_s else out.blocking).append(check)
        elif check.status == INVALID:
            out.invalid.append(check)
    return out


# ------------------------------------------------------------------------------------ interval rule


@dataclass
class SmartInterval:
    """When to look again.

    Rule (``smart=True``): nothing pending -> ``interval_s`` (default 8 h). Something pending (a
    folder settling, blocked or deferred) -> as soon as the earliest pending folder can become
    ready, clamped to ``[min_s, max_s]`` and never beyond ``interval_s``. ``smart=False`` always
    waits ``interval_s`` (the original's fixed interval). The clock is injectable for tests.
    """

    interval_s: float = 8 * 3600.0
    min_s: float = 60.0
    max_s: float = 1800.0
    smart: bool = True
    clock: Callable[[], float] = time.time

    def wait(self, ready_at: Sequence[float] | Iterable[float]) -> float:
        """Seconds to sleep, given the absolute times (epoch s) at which pending folders may be ready."""
        times = list(ready_at)
        if not self.smart or not times:
            return self.interval_s
        delay = min(times) - self.clock()
        return min(max(delay, self.min_s), self.max_s, self.interval_s)

    def next_check_at(self, ready_at: Iterable[float]) -> float:
        return self.clock() + self.wait(list(ready_at))


# ------------------------------------------------------------------------------------ wake-up probe


def probe_signature(root: str | os.PathLike[str], *, recent: int = 4) -> tuple[tuple[str, int], ...]:
    """A cheap signature that changes when a night folder appears or a recent folder gains files.

    Stats each unit folder (a new night folder changes its mtime) and the ``recent`` newest night
    folders of each unit (a file added to an existing folder changes that folder's mtime; the
    original watched unit folders only and so missed files arriving late). ~100 stats for 20 units.
    """
    sig: list[tuple[str, int]] = []
    try:
        units = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return (("<unreachable>", 0),)
    for unit in units:
        if parse_unit_dir(unit.name) is None or not unit.is_dir(follow_symlinks=False):
            continue
        try:
            sig.append((unit.name, unit.stat(follow_symlinks=False).st_mtime_ns))
            names = sorted(n for n in os.listdir(unit.path) if parse_folder_name(n) is not None)
        except OSError:
            continue
        for name in names[-recent:]:
            try:
                sig.append((f"{unit.name}/{name}", os.stat(os.path.join(unit.path, name)).st_mtime_ns))
            except OSError:
                continue
    return tuple(sig)
