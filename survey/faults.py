"""Fault injection for reliability tests (failpoints, as databases use for the same purpose).

`GWPORTAL_CRASH_AT=name` or `name:n` sends SIGKILL to this very process the n-th time the code passes
`crash_point(name)`: a real `kill -9` at an exact place, so tests can prove that a rerun repairs
everything. `GWPORTAL_PAUSE_AT=name[:n]` with `GWPORTAL_PAUSE_FILE=path` makes the process stop there
until that file is removed (it creates `path.reached` first), so a test can change files between the
scan and the read, or cut the database connection mid-run. Unset (always, in production) each point
costs one string comparison.
"""
from __future__ import annotations

import os
import signal
import time
from collections import Counter

_seen: Counter[str] = Counter()


def _parse(var: str) -> tuple[str, int]:
    spec = os.environ.get(var, "")
    name, _, nth = spec.partition(":")
    return name, int(nth or 1) if name else 0


_CRASH = _parse("GWPORTAL_CRASH_AT")
_PAUSE = _parse("GWPORTAL_PAUSE_AT")


def crash_point(name: str) -> None:
    if name == _CRASH[0] or name == _PAUSE[0]:
        _seen[name] += 1
        if name == _CRASH[0] and _seen[name] == _CRASH[1]:
            os.kill(os.getpid(), signal.SIGKILL)
        if name == _PAUSE[0] and _seen[name] == _PAUSE[1]:
            _pause(os.environ["GWPORTAL_PAUSE_FILE"])


def _pause(flag: str, limit_s: float = 120.0) -> None:
    with open(flag + ".reached", "w"):
        pass
    deadline = time.monotonic() + limit_s
    while os.path.exists(flag) and time.monotonic() < deadline:
        time.sleep(0.05)
