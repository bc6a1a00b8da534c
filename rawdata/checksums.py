"""`allfiles.hash`: the SHA-256 list TCSpy writes before transfer (`<sha256-hex> <basename>` per line)."""
from __future__ import annotations

import hashlib
import os
import re

HASH_LINE = re.compile(r"^([0-9a-fA-F]{64})\s+\*?(.+?)\s*$")
CHUNK = 4 * 1024 * 1024


def read_hash_file(path: str | os.PathLike) -> dict[str, str]:
    """Map basename -> lower-case hex digest; lines that are not `<hex> <name>` are skipped."""
    hashes: dict[str, str] = {}
    try:
        with open(path, encoding="ascii", errors="replace") as handle:
            for line in handle:
                match = HASH_LINE.match(line.strip())
                if match:
                    hashes[os.path.basename(match.group(2))] = match.group(1).lower()
    except FileNotFoundError:
        return {}
    return hashes


def sha256_file(path: str | os.PathLike) -> str:
    """Stream the file through SHA-256 in 4 MiB blocks (frames are ~122 MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()
