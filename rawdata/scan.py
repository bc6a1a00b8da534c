"""Walk a data root cheaply: unit folders, night folders, candidate frame files with size and mtime.

No header is read here. One `os.scandir` per folder gives names, sizes and mtimes, which is all that
change detection and transfer fingerprints need (~240,000 files/s on the project machine).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterable, Iterator

from rawdata.folders import FolderInfo, parse_folder_name, parse_unit_dir

FRAME_SUFFIXES = (".fits", ".fits.fz")
HASH_FILE = "allfiles.hash"


@dataclass(frozen=True)
class FileEntry:
    """One candidate frame file in a night folder."""

    name: str
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class NightFolderRef:
    """A night folder found under a unit folder, not yet listed."""

    unit: str
    unit_dir: str
    info: FolderInfo
    path: str
    dir_mtime_ns: int

    @property
    def name(self) -> str:
        return self.info.name


@dataclass
class FolderListing:
    """What one `scandir` of a night folder shows."""

    files: list[FileEntry] = field(default_factory=list)
    temporaries: list[str] = field(default_factory=list)
    has_hash: bool = False
    other: int = 0

    @property
    def total_bytes(self) -> int:
        return sum(entry.size for entry in self.files)

    @property
    def newest_mtime_ns(self) -> int:
        return max((entry.mtime_ns for entry in self.files), default=0)

    def fingerprint(self) -> str:
        """A string that changes whenever a file is added, removed, grown or touched."""
        return f"{len(self.files)}:{self.total_bytes}:{self.newest_mtime_ns}"


def is_rsync_temporary(name: str) -> bool:
    """rsync writes `.<name>.XXXXXX` beside the target; other tools use `.part`/`.tmp`/`~`."""
    return (name.startswith(".") and name.count(".") >= 2) or name.endswith((".part", ".tmp", "~", ".filepart"))


def is_frame_name(name: str) -> bool:
    return name.endswith(FRAME_SUFFIXES) and not name.startswith((".", "_"))


def iter_unit_dirs(root: str | os.PathLike) -> Iterator[tuple[str, str, str]]:
    """Yield (unit, dir name, path) for `7DTnn` (and the non-standard `7DT-nn`) folders, sorted."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return
    for entry in entries:
        unit = parse_unit_dir(entry.name)
        if unit and entry.is_dir(follow_symlinks=False):
            yield unit, entry.name, entry.path


def iter_night_folders(
    root: str | os.PathLike,
    *,
    units: Iterable[str] | None = None,
    start: date | None = None,
    end: date | None = None,
    include_test: bool = False,
) -> Iterator[NightFolderRef]:
    """Yield every night folder in every real naming variant, filtered by unit and folder date."""
    wanted = {u.upper() for u in units} if units else None
    for unit, unit_dir, unit_path in iter_unit_dirs(root):
        if wanted and unit not in wanted:
            continue
        try:
            entries = sorted(os.scandir(unit_path), key=lambda e: e.name)
        except OSError:
            continue
        for entry in entries:
            info = parse_folder_name(entry.name)
            if info is None or not entry.is_dir(follow_symlinks=False):
                continue
            if info.is_test and not include_test:
                continue
            if info.date is None:
                continue
            if (start and info.date < start) or (end and info.date > end):
                continue
            yield NightFolderRef(unit, unit_dir, info, entry.path, entry.stat(follow_symlinks=False).st_mtime_ns)


def list_folder(path: str | os.PathLike) -> FolderListing:
    """List candidate frames of one night folder (flat: sub-folders such as tmp/ are not frames)."""
    listing = FolderListing()
    with os.scandir(path) as it:
        for entry in it:
            name = entry.name
            if is_rsync_temporary(name):
                listing.temporaries.append(name)
            elif name == HASH_FILE:
                listing.has_hash = True
            elif is_frame_name(name):
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue  # vanished between listing and stat
                if entry.is_file(follow_symlinks=False):
                    listing.files.append(FileEntry(name, st.st_size, st.st_mtime_ns))
                else:
                    listing.other += 1
            else:
                listing.other += 1
    listing.files.sort(key=lambda e: e.name)
    return listing


def data_root_exists(root: str | os.PathLike) -> bool:
    return Path(root).is_dir()
