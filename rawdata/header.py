"""Read and parse the primary FITS header of a raw 7DT frame, fast, with astropy as the reference.

Framework-free (no Django): the ingest readers run it in worker processes.

Why a hand-written parser: astropy's ``getheader`` costs ~1.3 ms per 180-card header, which caps
ingest at ~750 files/s per core. The 7DT writers (TCSpy, NINA) emit plain FITS-standard 80-character
cards, which a narrow parser reads 30x to 100x faster, on two levels. The general path: ``struct``
splits the header into cards in C, a per-process cache maps card images already seen (most cards
of a unit repeat byte for byte) to their value, and only the new cards are parsed in Python.
Layouts: a header with the same keywords at the same places as the previous one of its length
(frames of one writer and folder) is checked against it as a whole and only its volatile value
fields are read (see _Template). Both accept only what they understand completely and reproduce
astropy's reading exactly (same keyword, same Python value, first value of a repeated keyword);
anything else (CONTINUE, HIERARCH, record-valued cards, complex or non-standard numbers, control
characters, keywords with illegal characters, an END card with junk...) is handed to astropy.
Bytes outside ASCII are a ``non_ascii`` problem: astropy would silently turn them into '?'.
tests/unit/test_header.py checks all this card by card against astropy on its own test files and
on random cards, tests/unit/test_header_fast.py on sequences of headers read with warm caches.

:func:`promote` likewise applies again only the rules whose keywords' values changed from the
previous frame (see _Promoter).

Public API: :func:`read_header_bytes`, :func:`parse_header`, :func:`read_header`, :class:`Header`,
:class:`HeaderError`, :func:`promote`, :func:`sexagesimal_to_deg`.
"""
from __future__ import annotations

import errno
import logging
import math
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import compress
from operator import is_not, itemgetter, ne, not_
from typing import Any, NamedTuple

log = logging.getLogger(__name__)

BLOCK = 2880
CARD = 80
# First read: 6 blocks (17,280 bytes) hold a 215-card header, so a typical 180-card 7DT header
# (5 blocks) costs one read() call; 3 blocks would need a second call for nearly every frame.
FIRST_READ_BLOCKS = 6

# Reason codes carried by HeaderError.reason.
EMPTY = "empty"
NOT_FITS = "not_fits"
NO_END = "no_end"
TRUNCATED_HEADER = "truncated_header"
UNREADABLE = "unreadable"
NON_ASCII = "non_ascii"
BAD_HEADER = "bad_header"
REASONS = frozenset({EMPTY, NOT_FITS, NO_END, TRUNCATED_HEADER, UNREADABLE, NON_ASCII, BAD_HEADER})

_SIMPLE = b"SIMPLE  ="
_END_CARD = "END" + " " * 77
_END_BYTES = _END_CARD.encode("ascii")
_KEY_BYTES = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_NUM_BYTES = b"0123456789+-.ED"  # FITS fixed-format number characters (upper-case exponents only)
_SIGNS = frozenset(b"+-")
_COMMENTARY = {b"COMMENT ": "COMMENT", b"HISTORY ": "HISTORY", b"        ": ""}
_COMMENTARY_KEYS = tuple(_COMMENTARY.values())
_SPECIAL = frozenset({b"END", b"CONTINUE", b"HIERARCH"})
_BITPIX = frozenset({8, 16, 32, 64, -32, -64})


class HeaderError(Exception):
    """A file whose header cannot be catalogued; ``reason`` is one of :data:`REASONS`."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(reason, detail)
        self.reason = reason
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


@dataclass(slots=True)
class Header:
    """A parsed primary header.

    ``cards`` maps keyword -> value (str, int, float, bool, None for an empty value; COMMENT, HISTORY
    and blank-keyword cards as lists of str); a repeated keyword keeps its first value, as astropy's
    ``header[key]`` does. ``data_bytes`` is the unpadded data size the header announces.
    """

    cards: dict[str, Any]
    header_bytes: int
    data_bytes: int
    via_astropy: bool = False
    warnings: tuple[str, ...] = ()
    layout: Layout | None = None  # set when a template read it: cards == layout.merge(layout.changes(cards))


    @property
    def expected_size(self) -> int:
        """File size of a complete single-HDU file: a smaller file is truncated or still growing."""
        return self.header_bytes + -(-self.data_bytes // BLOCK) * BLOCK


# --------------------------------------------------------------------------------------- reading


def _find_end(buf: bytes, start: int = 0) -> int:
    """Offset of the first END card (at a card boundary, as astropy requires), or -1.

    Like astropy, 'END' followed by any character that cannot continue a keyword ends the header.
    """
    i = buf.find(b"END", start)
    while i != -1:
        if i % CARD == 0 and (i + 3 >= len(buf) or buf[i + 3] not in _KEY_BYTES):
            return i
        i = buf.find(b"END", (i // CARD + 1) * CARD)
    return -1


# The last _find_valid_end scan: (first card, first bytes of the cards, offsets of the cards
# starting with 'E'). Headers of one layout start their cards with the same bytes, so the 'E' cards
# are where they were: only those are compared again.
_last_scan: tuple[int, bytes, tuple[int, ...]] = (-1, b"", ())


def _find_valid_end(buf: bytes, start: int = 0) -> int:
    """Offset of the first standard END card ('END' + 77 blanks) at a card boundary at or after
    ``start``, or -1.

    Only cards whose first byte is 'E' can be one: they are found in the every-80th-byte slice
    (one C pass over ~200 bytes), then compared: ~2x faster than searching for the card.
    An END-like card earlier on (which would end the header first) is caught by the fast parser,
    which declines it.
    """
    global _last_scan
    k = -(-start // CARD)
    firsts = buf[k * CARD :: CARD]
    scan_k, scan_firsts, offsets = _last_scan
    if scan_k != k or scan_firsts != firsts:
        found = []
        i = firsts.find(b"E")
        while i != -1:
            found.append((k + i) * CARD)
            i = firsts.find(b"E", i + 1)
        offsets = tuple(found)
        _last_scan = (k, firsts, offsets)
    last = len(buf) - CARD
    for j in offsets:
        # (the second byte first: startswith() parses its arguments the slow way, ~4x an index)
        if j <= last and buf[j + 1] == 78 and buf.startswith(_END_BYTES, j):  # 78: "N"
            return j
    return -1


def _read_upto(fd: int, n: int) -> bytes:
    """os.read() until n bytes or end of file (a read may legally return less)."""
    data = os.read(fd, n)
    if len(data) >= n or not data:
        return data
    parts = [data]
    got = len(data)
    while got < n:
        more = os.read(fd, n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


# Header size of the last file read: the next one (same writer, same folder) very likely has the
# same, so the first read asks for that much (at most FIRST_READ_BLOCKS blocks) and, when END is in
# it, spares copying an unused rest twice (kernel to buffer, buffer to the returned slice). A guess
# only: the result is the same either way.
_size_hint = FIRST_READ_BLOCKS * BLOCK


def read_header_bytes(path: str | os.PathLike[str], *, max_blocks: int = 200) -> bytes:
    """The primary header of ``path``: whole 2880-byte blocks up to the one holding END.

    One read() of :data:`FIRST_READ_BLOCKS` blocks (or of the previous file's header size, when that
    holds END), then more only if END is not yet found, so a long header is never cut at a fixed
    size. os.open/os.read: a buffered file object costs ~4 us more per file. Raises
    :class:`HeaderError`.
    """
    global _size_hint
    limit = max_blocks * BLOCK
    first = FIRST_READ_BLOCKS * BLOCK
    if first > limit:
        first = limit
    try:
        fd = os.open(path, os.O_RDONLY)
        try:
            hint = _size_hint
            want = hint if hint < first else first
            buf = os.read(fd, want)
            if 0 < len(buf) < want:  # (a regular file gives less only at its end)
                buf += _read_upto(fd, want - len(buf))
            if len(buf) == want and buf.startswith(_SIMPLE):
                # A valid END card within the first ``want`` bytes is the first one a read of
                # ``first`` bytes would find (no other read is needed: ``want`` is whole blocks).
                pos = _find_valid_end(buf)
                if pos >= 0:
                    size = (pos // BLOCK + 1) * BLOCK
                    if size != hint:
                        _size_hint = size
                    return buf if size == want else buf[:size]
                if want < first:  # as if ``first`` bytes had been read
                    buf += _read_upto(fd, first - want)
            if not buf:
                raise HeaderError(EMPTY, "file has 0 bytes")
            if not buf.startswith(_SIMPLE):
                if len(buf) < 9 and _SIMPLE.startswith(buf):
                    raise HeaderError(TRUNCATED_HEADER, f"file ends after {len(buf)} bytes")
                raise HeaderError(NOT_FITS, f"does not start with a SIMPLE card: {buf[:20]!r}")
            eof = len(buf) < first
            pos = _find_valid_end(buf)
            if pos < 0:
                pos = _find_end(buf)
            while pos < 0:
                if eof:
                    raise HeaderError(TRUNCATED_HEADER, f"file ends after {len(buf)} bytes without an END card")
                if len(buf) >= limit:
                    raise HeaderError(NO_END, f"no END card in the first {max_blocks} blocks")
                want = min(len(buf), limit - len(buf))  # double each time
                more = _read_upto(fd, want)
                eof = len(more) < want
                scan_from = len(buf) - len(buf) % CARD
                buf += more
                pos = _find_end(buf, scan_from)  # rare (headers over 6 blocks): exact scan of the new part
            size = (pos // BLOCK + 1) * BLOCK
            if len(buf) < size:
                buf += _read_upto(fd, size - len(buf))
                if len(buf) < size:
                    raise HeaderError(TRUNCATED_HEADER, f"file ends after {len(buf)} bytes, inside the END block")
            _size_hint = size
            return buf if len(buf) == size else buf[:size]
        finally:
            os.close(fd)
    except OSError as exc:
        if exc.filename is None and exc.errno == errno.EISDIR:  # open() says so, with the name
            exc = IsADirectoryError(exc.errno, exc.strerror, os.fspath(path))
        raise HeaderError(UNREADABLE, str(exc)) from exc


def read_header(path: str | os.PathLike[str], *, max_blocks: int = 200) -> Header:
    """``parse_header(read_header_bytes(path))``."""
    return parse_header(read_header_bytes(path, max_blocks=max_blocks))


# --------------------------------------------------------------------------------------- parsing

# Card image (80 bytes) -> (keyword, value). Raw frames of one telescope repeat most cards byte
# for byte (site, devices, filter, gain, comments...), so a dict lookup replaces most parsing; the
# value is a pure function of the bytes and immutable, so sharing it is safe. To keep it small
# (memory, and no periodic clear-and-refill), a keyword whose cards keep changing (times, weather,
# pointing) stops being cached after _VOLATILE_AFTER different cards; the cache is cleared if it
# ever reaches _CARD_CACHE_MAX anyway. Measured with valgrind on the benchmark headers, this costs
# no more instructions than an unbounded cache.
_card_cache: dict[bytes, tuple[str, Any]] = {}
_CARD_CACHE_MAX = 16_384
_VOLATILE_AFTER = 128
_misses: dict[bytes, int] = {}  # card head -> cards of that keyword parsed so far
# 10-byte card head (b'KEYWORD = ') -> keyword, for heads already checked to be a standard value card.
_head_cache: dict[bytes, str] = {}
_HEAD_CACHE_MAX = 20_000
_structs: dict[int, struct.Struct] = {}  # card count -> Struct splitting a header into cards (C speed)


def _value_key(head: bytes) -> str | None:
    """Keyword of a FITS-standard value card head, or None if the fast path must not handle it."""
    if head[8:10] != b"= ":
        return None
    key = head[:8].rstrip(b" ")
    if not key or key in _SPECIAL or not _KEY_BYTES.issuperset(key):
        return None
    if len(_head_cache) >= _HEAD_CACHE_MAX:
        _head_cache.clear()
        _misses.clear()
    name = _head_cache[head] = key.decode("ascii")
    return name


def _parse_card(card: bytes) -> tuple[str, Any] | None:
    """(keyword, value) of one ASCII card image, or None when astropy must decide.

    Commentary cards give (keyword, text). Mirrors astropy's card grammar
    (astropy.io.fits.card._value_NFSC_RE) for the standard subset. The string rule is astropy's,
    not the FITS-standard pairing of quotes: the closing quote is the first quote after at least
    one character that is followed only by blanks or a '/' comment.
    """
    # Performance notes (CPython 3.11): `needle in some_bytes` first tries the needle as an integer
    # and raises and clears a TypeError inside (~2k instructions), so .find() is used instead;
    # bytes.translate() builds its tables on every call, so control characters are looked for with
    # str.isprintable() in the only parts they could hide in (strings, commentary text): keywords,
    # numbers and booleans are checked character by character anyway.
    head = card[:10]
    key = _head_cache.get(head)
    if key is None:
        ckey = _COMMENTARY.get(card[:8])
        if ckey is not None:
            text = card[8:].rstrip(b" ").decode("ascii")
            return (ckey, text) if text.isprintable() else None  # a control character: astropy decides
        key = _value_key(head)
        if key is None:
            return None
    val: Any
    vc = card[10:].strip(b" ")
    if not vc:
        val = None
    elif vc[0] == 39:  # "'"
        q = vc.find(b"'", 2)
        while q != -1:
            rest = vc[q + 1 :].lstrip(b" ")
            if not rest or rest[0] == 47:  # "/"
                break
            q = vc.find(b"'", q + 1)
        if q == -1:
            rest = vc[2:].lstrip(b" ")
            if vc[1:2] == b"'" and (not rest or rest[0] == 47):
                val = ""
            else:
                return None
        else:
            strg = vc[1:q].rstrip(b" ")
            if strg.find(b": ") >= 0:  # may be a record-valued keyword card (DP1 = 'AXIS.1: 1')
                return None
            val = strg.replace(b"''", b"'").decode("ascii")
            if not val.isprintable():
                return None
    else:
        j = vc.find(b"/")
        tok = vc if j == -1 else vc[:j].rstrip(b" ")
        if tok.isdigit():
            val = int(tok)
        elif tok == b"T":
            val = True
        elif tok == b"F":
            val = False
        elif not tok:
            val = None
        elif tok.strip(_NUM_BYTES):
            return None  # complex, lower-case exponent, embedded blank, garbage...
        elif tok[1:].isdigit() and tok[0] in _SIGNS:
            val = int(tok)
        else:  # within the FITS number characters, float() accepts exactly the FITS forms
            try:
                val = float(tok.replace(b"D", b"E"))
            except ValueError:
                return None
            if val - val != 0.0:  # overflow to inf: astropy decides, callers may
                return None  # then rely on fast-path values being finite
    return key, val


def _cached_card(card: bytes) -> tuple[str, Any] | None:
    """:func:`_parse_card` through the card cache (``card`` not in it, ASCII)."""
    pair = _parse_card(card)
    if pair is not None:
        head = card[:10]
        count = _misses.get(head, 0)
        if count < _VOLATILE_AFTER:  # a keyword whose cards keep changing is no longer cached
            _misses[head] = count + 1
            _card_cache[card] = pair
    return pair


def _parse_general(head: bytes) -> tuple[dict[str, Any], tuple[bytes, ...], list[tuple[str, Any]]] | None:
    """(cards, card images, (keyword, value) per card) of ``head`` (whole ASCII cards, END
    excluded), or None when astropy must decide. Cards seen before come from the card cache."""
    n = len(head) // CARD
    splitter = _structs.get(n)
    if splitter is None:
        splitter = _structs[n] = struct.Struct("80s" * n)
    images: tuple[bytes, ...] = splitter.unpack(head)
    if len(_card_cache) > _CARD_CACHE_MAX:
        _card_cache.clear()
    if len(_misses) > _HEAD_CACHE_MAX:  # (commentary heads are not bounded by _head_cache)
        _misses.clear()
    pairs = list(map(_card_cache.get, images))
    for i in compress(range(n), map(not_, pairs)):  # the cards not in the cache
        pair = _cached_card(images[i])
        if pair is None:
            return None
        pairs[i] = pair
    # A commentary keyword sits at its first card's position, its value the list of all its texts.
    cards = dict(pairs)
    commentary: dict[str, list[str]] | None = None
    n_commentary = 0
    if "HISTORY" in cards or "COMMENT" in cards or "" in cards:
        commentary = {}
        for ckey in _COMMENTARY_KEYS:
            if ckey in cards:
                commentary[ckey] = lst = [text for k, text in pairs if k == ckey]
                n_commentary += len(lst)
        cards.update(commentary)
    if len(cards) != n - n_commentary + (len(commentary) if commentary else 0):
        # A keyword repeats: keep its first value, like astropy's header[key].
        cards = {}
        for key, val in pairs:
            if key not in cards:
                cards[key] = val
        if commentary is not None:
            cards.update(commentary)
    return cards, images, pairs


# Layouts. Frames from one writer in one folder share their layout (the same keywords at the same
# card positions) and differ only in a few volatile cards (times, pointing, ids, weather), mostly
# only in their value fields. Once two headers of a layout have been read by the general path (the
# first is remembered in _seen), it becomes the template for its header length, with the cards that
# differed as its volatile ones. One struct call cuts a header into the bytes that must not change
# (compared with the template's as one tuple) and the volatile fields, which are read in bulk with
# checks for the common fixed forms (a number right-justified in columns 11-30, a quoted string
# without a quote in it) that give exactly _parse_card's value. Anything else sends the header to
# the general path, which then updates the template; card positions that ever differed within a
# layout stay volatile. ~7 us instead of ~40 for a 180-card header with ~17 volatile cards.
_templates: dict[int, _Template] = {}  # header length in bytes (END excluded) -> template
_seen: dict[int, _Seen] = {}  # header length -> the last header of a layout without a template yet
_last_end = -1  # header length of the last header read by a template (the END card's offset)
_TEMPLATES_MAX = 64
_STRUCTURAL = frozenset({"BITPIX", "NAXIS", "GROUPS", "GCOUNT", "PCOUNT"})
_FLOAT, _INT, _STRING, _WHOLE = 0, 1, 2, 3  # field kinds
_NUM_FIELD = _NUM_BYTES + b" "
_Field = tuple[int, int, int]  # (kind, start, end) in the header


class Layout:
    """What the headers read by one template share, so a catalogue can store it once.

    ``base`` holds the cards of the header the template was built from, ``changed`` the keywords
    whose values may differ from it (the template's volatile fields). Every header the template reads
    is ``merge(changes(cards))``: the same keys, in the same order, with the same values. A 180-card
    header's changes are a few tens of cards. Compared by identity; ``key`` is the caller's (the
    ingest keeps the stored form of ``base`` there, computed once per layout).
    """

    __slots__ = ("base", "changed", "_pick", "key")

    def __init__(self, base: dict[str, Any], changed: tuple[str, ...]) -> None:
        self.base = base
        self.changed = changed
        self._pick = _getter(list(changed))
        self.key: Any = None

    def changes(self, cards: dict[str, Any]) -> dict[str, Any]:
        """The cards of ``cards`` (a header this layout read) that may differ from ``base``."""
        pick = self._pick
        return dict(zip(self.changed, pick(cards))) if pick is not None else {}

    def merge(self, changes: dict[str, Any]) -> dict[str, Any]:
        """The whole header from its changes (inverse of :meth:`changes`)."""
        return merge_cards(self.base, changes)

    def shared(self) -> dict[str, Any]:
        """``base`` with None for every changed card: what a header's changes are merged into, the
        same for every header of the layout (and so, for storage, the same from run to run)."""
        changed = set(self.changed)
        return {k: (None if k in changed else v) for k, v in self.base.items()}


def merge_cards(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` applied: a header stored as a layout and its changed cards.

    Shallow: a commentary list not in ``changes`` is ``base``'s own list."""
    cards = dict(base)
    cards.update(changes)
    return cards


@dataclass(slots=True)
class _Template:
    """A header layout: what a header of it repeats byte for byte, and how to read the rest.

    ``splitter`` cuts a header into pieces, alternately unchanged bytes (``stable``, as in the
    template's header) and volatile fields. Of the fields, ``floats``, ``ints`` and ``strings`` get
    those of each kind, for the keywords in ``float_keys``, ``int_keys``, ``string_keys`` (``split``
    cuts the decoded concatenation of the strings back into fields); ``checks``: (kind, field) of
    a repeated keyword, only checked; ``values``/``comments``: (field, keyword, keep or index in the
    commentary list) of cards read whole. ``cards``: the values of the header it was built from
    (private, copied per header, as are its commentary ``lists``); ``data_bytes`` is None when a
    structural card is volatile. ``images`` and ``keys`` (per card) serve to build the next one.
    ``layout``: ``cards`` and the keywords a header of it may change, for whoever stores headers.
    """

    images: tuple[bytes, ...]
    keys: tuple[str, ...]  # keyword of each card
    kinds: dict[int, _Field]  # card index -> its volatile field
    splitter: struct.Struct
    stable: tuple[bytes, ...]
    floats: Callable[[tuple[bytes, ...]], tuple[bytes, ...]] | None
    float_keys: tuple[str, ...]
    ints: Callable[[tuple[bytes, ...]], tuple[bytes, ...]] | None
    int_keys: tuple[str, ...]
    strings: Callable[[tuple[bytes, ...]], tuple[bytes, ...]] | None
    string_keys: tuple[str, ...]
    split: Callable[[str], tuple[str, ...]]
    checks: tuple[tuple[int, int], ...]
    values: tuple[tuple[int, str, bool], ...]
    comments: tuple[tuple[int, str, int], ...]
    cards: dict[str, Any]
    lists: tuple[str, ...]
    data_bytes: int | None
    layout: Layout


class _Seen(NamedTuple):
    """A header read by the general path: a template is built when the next one has its layout."""

    images: tuple[bytes, ...]
    keys: tuple[str, ...]
    kinds: dict[int, _Field]  # (none volatile yet: always empty)


def _getter(items: list[Any]) -> Callable[[Any], tuple[Any, ...]] | None:
    """itemgetter of ``items`` that returns a tuple even for one; None for none."""
    if not items:
        return None
    if len(items) == 1:
        only = items[0]
        return lambda obj: (obj[only],)
    return itemgetter(*items)


def _number_field(tok: bytes) -> int | float | None:
    """A number field's value as _parse_card reads it, or None (general path) if not plain."""
    tok = tok.strip(b" ")
    if not tok or tok.strip(_NUM_BYTES):
        return None
    try:
        val = int(tok) if tok.lstrip(b"+-").isdigit() else float(tok)  # a D exponent raises
    except ValueError:
        return None
    return None if val - val else val  # inf (nan): the general path decides


def _string_field(tok: bytes) -> str | None:
    """A string field's value (the bytes between the quotes) as _parse_card reads it, or None."""
    if tok.find(b"'") >= 0:  # an escaped quote, or a different closing quote
        return None
    tok = tok.rstrip(b" ")
    if tok.find(b": ") >= 0:  # may be a record-valued keyword card
        return None
    try:
        val = tok.decode("ascii")
    except UnicodeDecodeError:
        return None
    return val if val.isprintable() else None


def _field_kind(card: bytes, pair: tuple[str, Any], start: int) -> _Field:
    """The field of ``card`` (at byte ``start`` of the header) that may vary."""
    key, val = pair
    kind = type(val)
    if kind is int or kind is float:  # right-justified in columns 11-30, then blanks or a comment
        rest = card[30:].lstrip(b" ")
        if (not rest or rest[0] == 47) and type(_number_field(card[10:30])) is kind:
            return _FLOAT if kind is float else _INT, start + 10, start + 30
    elif kind is str and key not in _COMMENTARY_KEYS:
        field = card[10:]
        qs = 10 + len(field) - len(field.lstrip(b" "))  # the opening quote
        q = card.find(b"'", qs + 1)
        if card[qs] == 39 and q > qs + 1:  # a closing quote after at least one character
            rest = card[q + 1 :].lstrip(b" ")
            if (not rest or rest[0] == 47) and _string_field(card[qs + 1 : q]) == val:
                return _STRING, start + qs + 1, start + q
    return _WHOLE, start, start + CARD


def _build_template(
    head: bytes,
    images: tuple[bytes, ...],
    keys: tuple[str, ...],
    pairs: list[tuple[str, Any]],
    cards: dict[str, Any],
    data_bytes: int,
    old: _Template | _Seen,
) -> _Template:
    """The template of ``head``'s layout, from an earlier header of it (``old``, same ``keys``):
    the volatile cards are those that differ from ``old``'s, plus ``old``'s volatile ones."""
    n = len(images)
    volatile = sorted(set(compress(range(n), map(ne, images, old.images))).union(old.kinds))
    old_kinds = old.kinds
    first = dict(zip(reversed(keys), range(n - 1, -1, -1)))  # keyword -> index of its first card
    kinds: dict[int, _Field] = {}
    fields: dict[int, list[tuple[int, str, int]]] = {_FLOAT: [], _INT: [], _STRING: []}
    checks: list[tuple[int, int]] = []
    values: list[tuple[int, str, bool]] = []
    comments: list[tuple[int, str, int]] = []
    formats: list[str] = []
    stable: list[bytes] = []
    at = 0
    for f, i in enumerate(volatile):  # the pieces: stable bytes (maybe none), field f, ..., stable bytes
        kind = _field_kind(images[i], pairs[i], i * CARD)
        if i in old_kinds and old_kinds[i] != kind:  # changes form from header to header: read it whole
            kind = (_WHOLE, i * CARD, (i + 1) * CARD)
        kinds[i] = kind
        _, start, end = kind
        formats.append(f"{start - at}s{end - start}s")
        stable.append(head[at:start])
        at = end
        key = keys[i]
        if kind[0] == _WHOLE:
            if key in _COMMENTARY_KEYS:
                comments.append((f, key, keys[:i].count(key)))
            else:
                values.append((f, key, first[key] == i))
        elif first[key] == i:
            fields[kind[0]].append((f, key, end - start))
        else:  # a repeated keyword: only checked
            checks.append((kind[0], f))
    formats.append(f"{len(head) - at}s")
    stable.append(head[at:])
    split: list[slice] = []
    at = 0
    for _, _, length in fields[_STRING]:
        split.append(slice(at, at + length))
        at += length
    lists = tuple(k for k in _COMMENTARY_KEYS if k in cards)
    base = dict(cards)
    for k in lists:
        base[k] = list(base[k])
    structural = any(keys[i] in _STRUCTURAL or keys[i].startswith("NAXIS") for i in volatile)
    floats, ints, strings = fields[_FLOAT], fields[_INT], fields[_STRING]
    changed = (*(f[1] for f in floats), *(f[1] for f in ints), *(f[1] for f in fields[_STRING]),
               *(v[1] for v in values if v[2]), *(c[1] for c in comments))
    return _Template(
        images, keys, kinds, struct.Struct("".join(formats)), tuple(stable),
        _getter([f[0] for f in floats]), tuple(f[1] for f in floats),
        _getter([f[0] for f in ints]), tuple(f[1] for f in ints),
        _getter([f[0] for f in strings]), tuple(f[1] for f in strings), _getter(split),  # type: ignore[arg-type]
        tuple(checks), tuple(values), tuple(comments), base, lists, None if structural else data_bytes,
        Layout(base, tuple(dict.fromkeys(changed))),
    )


def _parse_template(t: _Template, raw: bytes) -> dict[str, Any] | None:
    """The cards of ``raw`` (a header of ``t``'s length, END after it), or None when it does not
    have ``t``'s layout or a volatile field is not in a common form: the general path decides."""
    pieces = t.splitter.unpack_from(raw)
    if pieces[0::2] != t.stable:
        return None
    fields = pieces[1::2]
    cards = t.cards.copy()
    for key in t.lists:
        cards[key] = cards[key].copy()
    # Number fields: blank-padded FITS number characters; float() and int() take the blanks, and
    # a D exponent or an embedded blank makes them raise. Each float field must hold exactly one '.'
    # (else it may be an integer, or 1E5): checked over all of them at once, field by field if not.
    if t.floats is not None:
        toks = t.floats(fields)
        joined = b"".join(toks)
        if joined.strip(_NUM_FIELD):
            return None
        try:
            floats = list(map(float, toks))
        except ValueError:
            return None
        total = sum(floats)
        if total - total or joined.count(b".") != len(toks):  # inf, or not one '.' in each
            floats = list(map(_number_field, toks))
            if None in floats:
                return None
        cards.update(zip(t.float_keys, floats))
    if t.ints is not None:
        toks = t.ints(fields)
        if b"".join(toks).strip(_NUM_FIELD):
            return None
        try:
            cards.update(zip(t.int_keys, list(map(int, toks))))
        except ValueError:
            return None
    if t.strings is not None:
        joined = b"".join(t.strings(fields))
        if joined.find(b"'") >= 0:
            return None
        try:
            text = joined.decode("ascii")
        except UnicodeDecodeError:
            return None
        if not text.isprintable():
            return None
        vals = map(str.rstrip, t.split(text))  # (printable: ' ' is the only blank left)
        if text.find(": ") >= 0:
            vals = list(vals)
            if any(v.find(": ") >= 0 for v in vals):  # may be record-valued
                return None
        cards.update(zip(t.string_keys, vals))
    for kind, f in t.checks:
        if (_string_field(fields[f]) if kind == _STRING else _number_field(fields[f])) is None:
            return None
    for f, key, keep in t.values:
        pair = _whole_card(fields[f])
        if pair is None or pair[0] != key:
            return None
        if keep:
            cards[key] = pair[1]
    for f, key, index in t.comments:
        pair = _whole_card(fields[f])
        if pair is None or pair[0] != key:
            return None
        cards[key][index] = pair[1]
    return cards


def _whole_card(card: bytes) -> tuple[str, Any] | None:
    """A volatile card read whole: the card cache, else :func:`_parse_card` (ASCII only)."""
    pair = _card_cache.get(card)
    if pair is None and card.isascii():
        pair = _cached_card(card)
    return pair


def _parse_astropy(text: str) -> tuple[dict[str, Any], list[str]]:
    """The same cards dict, read by astropy; unparsable or invalid cards raise ``bad_header``."""
    from astropy.io import fits
    from astropy.io.fits.card import Undefined

    cards: dict[str, Any] = {}
    keyword = "?"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            header = fits.Header.fromstring(text)
            for card in header.cards:
                keyword = card.keyword
                if getattr(card, "_invalid", False):  # astropy's flag for a card with no value indicator
                    raise HeaderError(BAD_HEADER, f"{keyword}: card follows no FITS convention: {card.image[:80]!r}")
                value = card.value
                if keyword in ("COMMENT", "HISTORY", ""):
                    cards.setdefault(keyword, []).append(str(value))
                elif keyword not in cards:
                    cards[keyword] = None if isinstance(value, Undefined) else value
        except HeaderError:
            raise
        except Exception as exc:  # noqa: BLE001 - astropy raises VerifyError, ValueError, ...
            raise HeaderError(BAD_HEADER, f"{keyword}: {exc}") from exc
    return cards, [str(w.message) for w in caught]


def _data_bytes(cards: dict[str, Any]) -> int:
    """Data unit size from BITPIX, NAXIS, NAXISn, GCOUNT, PCOUNT (FITS 4.0, eq. 1 and 2)."""

    def integer(key: str, default: int | None = None) -> int:
        value = cards.get(key, default)
        if type(value) is not int:
            raise HeaderError(BAD_HEADER, f"{key}: missing or not an integer ({value!r})")
        return value

    bitpix = integer("BITPIX")
    if bitpix not in _BITPIX:
        raise HeaderError(BAD_HEADER, f"BITPIX: {bitpix} is not a FITS value")
    naxis = integer("NAXIS")
    if not 0 <= naxis <= 999:
        raise HeaderError(BAD_HEADER, f"NAXIS: {naxis} out of range")
    if naxis == 0:
        return 0
    axes = [integer(f"NAXIS{n}") for n in range(1, naxis + 1)]
    if any(a < 0 for a in axes):
        raise HeaderError(BAD_HEADER, f"NAXISn: negative axis length {axes}")
    if cards.get("GROUPS") is True and axes[0] == 0:  # random groups: NAXIS1 = 0 is not an axis
        axes = axes[1:]
    count = 1
    for a in axes:
        count *= a
    gcount = integer("GCOUNT", 1)
    pcount = integer("PCOUNT", 0)
    return abs(bitpix) // 8 * gcount * (pcount + count)


def parse_header(raw: bytes) -> Header:
    """Parse header bytes (cards up to END; padding optional) into a :class:`Header`.

    Does not require a SIMPLE card, so extension headers parse too; :func:`read_header_bytes`
    is where a file is recognised as FITS. Raises :class:`HeaderError`.
    """
    if not raw:
        raise HeaderError(EMPTY, "no header bytes")
    global _last_end
    raw = bytes(raw)
    if not _card_cache:  # a cleared card cache (cold start, tests) forgets the layouts too
        _templates.clear()
        _seen.clear()
    # Most headers have the layout of the previous one: try its END offset first. Only a header of
    # that layout (which _parse_template checks in full, so no card before is END-like) is read
    # there, and then it is also where the search below would find the END card.
    pos = _last_end
    tried = None
    if 0 <= pos and len(raw) - BLOCK <= pos and raw.startswith(_END_BYTES, pos):
        tried = template = _templates.get(pos)
        if template is not None:
            cards = _parse_template(template, raw)
            if cards is not None:
                data_bytes = template.data_bytes
                if data_bytes is None:
                    data_bytes = _data_bytes(cards)
                return Header(cards, (pos // BLOCK + 1) * BLOCK, data_bytes, layout=template.layout)
    # From read_header_bytes the END card is in the last block: look there first (an END-like
    # card earlier on makes the fast parser decline, and the exact path below finds it).
    pos = _find_valid_end(raw, max(0, len(raw) - BLOCK))
    if pos < 0:
        pos = _find_valid_end(raw)
    if pos >= 0:
        template = _templates.get(pos)
        if template is not None and template is not tried:
            cards = _parse_template(template, raw)
            if cards is not None:
                _last_end = pos
                data_bytes = template.data_bytes
                if data_bytes is None:
                    data_bytes = _data_bytes(cards)
                return Header(cards, (pos // BLOCK + 1) * BLOCK, data_bytes, layout=template.layout)
        head = raw[:pos]
        if head.isascii():
            parsed = _parse_general(head)
            if parsed is not None:
                cards, images, pairs = parsed
                data_bytes = _data_bytes(cards)
                # Learn the layout: a template once two headers of it have been seen (the cards
                # that differ between them are volatile), or an updated one.
                keys = tuple(map(itemgetter(0), pairs))
                old: _Template | _Seen | None = template
                if old is None or old.keys != keys:
                    old = _seen.get(pos)
                    if old is not None and old.keys != keys:
                        old = None
                if old is None:
                    if len(_seen) >= _TEMPLATES_MAX:
                        _seen.clear()
                    _seen[pos] = _Seen(images, keys, {})
                else:
                    if len(_templates) >= _TEMPLATES_MAX:
                        _templates.clear()
                    template = _templates[pos] = _build_template(head, images, keys, pairs, cards, data_bytes, old)
                    _last_end = pos
                    return Header(cards, (pos // BLOCK + 1) * BLOCK, data_bytes, layout=template.layout)
                return Header(cards, (pos // BLOCK + 1) * BLOCK, data_bytes)
    # The exact, slow path: first END-like card, byte checks, astropy.
    notes: list[str] = []
    pos = _find_end(raw)
    if pos < 0:
        raise HeaderError(NO_END, f"no END card in {len(raw)} bytes")
    head = raw[:pos]
    if not head.isascii():
        i = next(n for n, b in enumerate(head) if b > 127)
        keyword = head[i - i % CARD :][:8].decode("ascii", "replace").strip()
        raise HeaderError(NON_ASCII, f"byte {head[i]:#04x} in card {i // CARD + 1} ({keyword!r})")
    trailing = raw[pos + 3 : pos + CARD].rstrip(b" ")
    if trailing:
        notes.append(f"bytes after the END keyword ignored: {trailing!r}")
    cards, caught = _parse_astropy(head.decode("ascii") + _END_CARD)
    notes.extend(caught)
    log.debug("header parsed by astropy (fast path declined)")
    return Header(cards, (pos // BLOCK + 1) * BLOCK, _data_bytes(cards), True, tuple(notes))


# ------------------------------------------------------------------------------------- promotion


def sexagesimal_to_deg(text: str, hours: bool) -> float:
    """'hh:mm:ss.s' / 'hh mm ss' (hours=True, x15) or '+dd:mm:ss' / '-dd mm ss' to degrees.

    The sign is read from the text, so '-00 30 00' is -0.5. Raises ValueError on anything else.
    """
    s = text.strip()
    sign = 1.0
    if s[:1] in ("+", "-"):
        sign = -1.0 if s[0] == "-" else 1.0
        s = s[1:]
    parts = s.replace(":", " ").split()
    if not 1 <= len(parts) <= 3 or any(p[:1] in ("+", "-") for p in parts):
        raise ValueError(f"not sexagesimal: {text!r}")
    values = [float(p) for p in parts]
    if not all(math.isfinite(v) and v >= 0 for v in values) or any(v >= 60 for v in values[1:]):
        raise ValueError(f"not sexagesimal: {text!r}")
    if len(values) > 1 and not values[0].is_integer():
        raise ValueError(f"fractional leading field: {text!r}")
    value = values[0] + sum(v / 60**n for n, v in enumerate(values[1:], start=1))
    if hours:
        if value >= 24:
            raise ValueError(f"hour angle out of range: {text!r}")
        value *= 15.0
    return sign * value


def _text(v: Any) -> str | None:
    if isinstance(v, bool) or not isinstance(v, (str, int, float)):
        raise TypeError(f"not text: {v!r}")
    s = v.strip() if isinstance(v, str) else str(v)
    return None if s in ("", "None") else s  # TCSpy writes Python's None as 'None'


def _upper(v: Any) -> str | None:
    s = _text(v)
    return s.upper() if s else None


def _float(v: Any) -> float:
    if isinstance(v, bool):
        raise TypeError(f"boolean, not a number: {v!r}")
    f = float(v.strip().replace("D", "E")) if isinstance(v, str) else float(v)
    if not math.isfinite(f):
        raise ValueError(f"not finite: {v!r}")
    return f


def _int(v: Any) -> int:
    f = _float(v)
    if not f.is_integer():
        raise ValueError(f"not an integer: {v!r}")
    return int(f)


def _number(v: Any) -> int | float:
    f = _float(v)
    return int(f) if f.is_integer() else f


def _ranged(lo: float, hi: float, conv: Callable[[Any], float] = _float) -> Callable[[Any], float]:
    def check(v: Any) -> float:
        f = conv(v)
        if not lo <= f <= hi:
            raise ValueError(f"{f} outside [{lo}, {hi}]")
        return f

    return check


def _utc(v: Any) -> datetime:
    """DATE-OBS: ISO 8601 with 'T' or ' ', any fraction; naive means UTC."""
    if not isinstance(v, str):
        raise TypeError(f"not a date string: {v!r}")
    d = datetime.fromisoformat(v.strip())
    if d.tzinfo is None:  # (combine: the same as d.replace(tzinfo=...), ~5x cheaper)
        return datetime.combine(d, d.time(), timezone.utc)
    return d.astimezone(timezone.utc)


def _local(v: Any) -> datetime:
    """DATE-LOC: local wall-clock time, naive."""
    if not isinstance(v, str):
        raise TypeError(f"not a date string: {v!r}")
    d = datetime.fromisoformat(v.strip())
    return d if d.tzinfo is None else d.replace(tzinfo=None)


_ra_range = _ranged(0.0, 360.0)
_dec_range = _ranged(-90.0, 90.0)
_percent = _ranged(0.0, 100.0)


def _ra_deg(v: Any) -> float:
    """RA card: degrees as a number, or sexagesimal hours as text."""
    if isinstance(v, str) and (":" in v or " " in v.strip()):
        return sexagesimal_to_deg(v, hours=True)
    return _ra_range(v)


def _dec_deg(v: Any) -> float:
    """DEC card: degrees as a number, or sexagesimal degrees as text."""
    if isinstance(v, str) and (":" in v or " " in v.strip()):
        v = sexagesimal_to_deg(v, hours=False)
    return _dec_range(v)


def _ra_hms(v: Any) -> float:
    """OBJCTRA is always sexagesimal hours; a bare number has no known unit."""
    if not isinstance(v, str):
        raise TypeError(f"not sexagesimal text: {v!r}")
    return sexagesimal_to_deg(v, hours=True)


def _dec_dms(v: Any) -> float:
    if not isinstance(v, str):
        raise TypeError(f"not sexagesimal text: {v!r}")
    return _dec_range(sexagesimal_to_deg(v, hours=False))


def _bool(v: Any) -> bool:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.strip().upper() in ("TRUE", "T", "FALSE", "F"):
        return v.strip().upper() in ("TRUE", "T")
    raise ValueError(f"not a boolean: {v!r}")


_unit_range = _ranged(0.0, 1.0)
_percent_fraction = _ranged(0.0, 1.0, lambda v: _float(v) / 100.0)  # NINA CLOUDCVR is 0..100


def _fraction(v: Any) -> float:
    """TCSpy CLUDFRAC: a fraction, but a value above 1 can only be a percentage."""
    f = _float(v)
    return _unit_range(f / 100.0 if f > 1.0 else f)


def _kph(v: Any) -> float:
    """NINA reports wind in km/h; the catalogue stores m/s."""
    return _float(v) / 3.6


_Rule = tuple[str, tuple[tuple[str, Callable[[Any], Any]], ...]]

# Output key -> candidate (keyword, converter) pairs, tried in order; the first non-empty,
# convertible value wins. A value that fails conversion is reported and the next candidate tried.
_RULES: tuple[_Rule, ...] = (
    ("imagetyp", (("IMAGETYP", _upper),)),
    ("object", (("OBJECT", _text),)),
    ("objtype", (("OBJTYPE", _text),)),
    ("filter", (("FILTER", _text),)),
    ("telescop", (("TELESCOP", _text),)),
    ("exptime", (("EXPTIME", _float), ("EXPOSURE", _float))),
    ("date_obs", (("DATE-OBS", _utc),)),
    ("date_loc", (("DATE-LOC", _local),)),
    ("mjd", (("MJD", _float),)),
    ("jd", (("JD", _float),)),
    ("gain", (("GAIN", _number),)),
    ("egain", (("EGAIN", _float),)),
    ("xbinning", (("XBINNING", _int),)),
    ("ybinning", (("YBINNING", _int),)),
    ("ccd_temp", (("CCD-TEMP", _float),)),
    ("set_temp", (("SET-TEMP", _float),)),
    ("ra", (("RA", _ra_deg),)),
    ("dec", (("DEC", _dec_deg),)),
    ("obj_ra", (("OBJCTRA_", _ra_range), ("OBJCTRA", _ra_hms))),
    ("obj_dec", (("OBJCTDE_", _dec_range), ("OBJCTDEC", _dec_dms))),
    ("airmass", (("AIRMASS", _float),)),
    ("altitude", (("ALTITUDE", _float), ("CENTALT", _float))),
    ("azimuth", (("AZIMUTH", _float), ("CENTAZ", _float))),
    ("naxis1", (("NAXIS1", _int),)),
    ("naxis2", (("NAXIS2", _int),)),
    ("image_id", (("IMAGEID", _text),)),
    ("instrume", (("INSTRUME", _text),)),
    ("is_too", (("IS_TOO", _bool),)),
    ("obsmode", (("OBSMODE", _text),)),
    ("specmode", (("SPECMODE", _text),)),
    ("note", (("NOTE", _text),)),
    ("observer", (("OBSERVER", _text),)),
    ("focus_pos", (("FOCUSPOS", _float), ("FOCPOS", _float))),
    ("cam_id", (("CAM_ID", _text),)),
    ("humidity", (("HUMIDITY", _percent),)),
    ("amb_temp", (("AMBTEMP", _float),)),
    ("sky_temp", (("SKYTEMP", _float),)),
    ("dew_point", (("DEWPOINT", _float),)),
    ("pressure", (("PRESSURE", _float),)),
    ("moon_phase", (("MOONPHAS", _float),)),
    ("moon_sep", (("MOONSEP", _float),)),
)

# Weather keywords whose name or unit depends on the writer. SKYBRGHT is mag/arcsec^2 in TCSpy but
# lux in NINA, and WINDGUST is m/s in TCSpy but km/h in NINA: with an unknown writer both are skipped.
_WEATHER: dict[str, tuple[_Rule, ...]] = {
    "tcspy": (
        ("seeing", (("SKYFWHM", _float), ("STARFWHM", _float))),
        ("sky_brightness", (("SKYBRGHT", _float), ("MPSAS", _float))),
        ("cloud_frac", (("CLUDFRAC", _fraction),)),
        ("wind_speed", (("WINDSPED", _float),)),
        ("wind_gust", (("WINDGUST", _float),)),
    ),
    "nina": (
        ("seeing", (("STARFWHM", _float),)),
        ("sky_brightness", (("MPSAS", _float),)),
        ("cloud_frac", (("CLOUDCVR", _percent_fraction),)),
        ("wind_speed", (("WINDSPD", _kph),)),
        ("wind_gust", (("WINDGUST", _kph),)),
    ),
    "unknown": (
        ("seeing", (("SKYFWHM", _float), ("STARFWHM", _float))),
        ("sky_brightness", (("MPSAS", _float),)),
        ("cloud_frac", (("CLUDFRAC", _fraction), ("CLOUDCVR", _percent_fraction))),
        ("wind_speed", (("WINDSPED", _float), ("WINDSPD", _kph))),
        ("wind_gust", ()),
    ),
}

PROMOTED_KEYS: tuple[str, ...] = (
    *(name for name, _ in _RULES),
    "software",
    *(name for name, _ in _WEATHER["tcspy"]),
)

_MJD_EPOCH = datetime(1858, 11, 17, tzinfo=timezone.utc)
_MJD_TO_JD = 2400000.5


def _software(cards: dict[str, Any]) -> str:
    logpath, swcreate = cards.get("LOGPATH"), cards.get("SWCREATE")
    if (isinstance(logpath, str) and "tcspy" in logpath.lower()) or cards.get("IMAGEID") not in (None, ""):
        return "tcspy"
    if isinstance(swcreate, str) and "N.I.N.A" in swcreate:
        return "nina"
    return "unknown"


_Candidates = tuple[tuple[str, Callable[[Any], Any]], ...]


def _apply(candidates: _Candidates, get: Callable[[str], Any]) -> tuple[Any, tuple[str, ...]]:
    """(result, problems) of one rule: the first non-empty, convertible value's conversion."""
    problems: tuple[str, ...] = ()
    for keyword, conv in candidates:
        value = get(keyword)
        if value is None:
            continue
        kind = type(value)
        if kind is float and conv is _float and value - value == 0.0:
            return value, problems  # the common case, inline: a finite float needs no conversion
        if kind is str:
            text = value.strip()
            if not text:
                continue
            if conv is _text:  # inline too
                if text != "None":
                    return text, problems
                continue
        try:
            result = conv(value)
        except (ValueError, TypeError, OverflowError) as exc:
            problems += (f"{keyword}: {exc}",)
            continue
        if result is not None:
            return result, problems
    return None, problems


# Converters that return a finite float value in [lo, hi] as it is: promote() does that inline.
_FLOAT_RANGES: dict[Callable[[Any], Any], tuple[float, float]] = {
    _float: (-math.inf, math.inf), _ra_range: (0.0, 360.0), _ra_deg: (0.0, 360.0),
    _dec_range: (-90.0, 90.0), _dec_deg: (-90.0, 90.0), _percent: (0.0, 100.0),
}
_NO_RANGE = (math.inf, -math.inf)

# (output key, index in keywords of the first candidate's keyword or -1, [lo, hi] of a float taken
# as it is, the first candidate's converter, all candidates)
_Plan = tuple[str, int, float, float, Callable[[Any], Any] | None, _Candidates]


@dataclass(slots=True)
class _Promoter:
    """:func:`promote` for one writer: its rules, and what it gave for the last frame.

    Consecutive frames share most values, as the very same objects (the card cache and the
    templates hand them out again), so only the rules reading a keyword whose value is not the
    same object as last time are applied again: a rule's result and problems depend on its
    keywords' values only. ``keywords``: each (keyword, rule) pair once, ``rule_of`` the rule of
    each. ``last``: (values of ``keywords``, results by output key, problems by rule index);
    replaced whole, never changed in place.
    """

    plans: tuple[_Plan, ...]
    keywords: tuple[str, ...]
    rule_of: tuple[int, ...]
    last: tuple[tuple[Any, ...], dict[str, Any], dict[int, tuple[str, ...]]] | None = None

    @classmethod
    def of(cls, rules: tuple[_Rule, ...]) -> _Promoter:
        pairs = list(dict.fromkeys((k, r) for r, (_, candidates) in enumerate(rules) for k, _ in candidates))
        keywords = tuple(k for k, _ in pairs)
        plans: list[_Plan] = []
        for r, (name, candidates) in enumerate(rules):
            if not candidates:
                plans.append((name, -1, *_NO_RANGE, None, candidates))
                continue
            keyword, conv = candidates[0]
            lo, hi = _FLOAT_RANGES.get(conv, _NO_RANGE)
            plans.append((name, pairs.index((keyword, r)), lo, hi, conv, candidates))
        return cls(tuple(plans), keywords, tuple(r for _, r in pairs))


_PROMOTERS = {software: _Promoter.of(_RULES + weather) for software, weather in _WEATHER.items()}


def promote(cards: dict[str, Any]) -> dict[str, Any]:
    """Typed database columns from header cards: every key of :data:`PROMOTED_KEYS` plus ``_warnings``.

    Absent, empty or unconvertible values give None; a value that cannot be converted adds
    'KEYWORD: reason' to ``_warnings`` instead of raising, so one odd card never loses a frame.
    Card values are taken to be immutable (as :func:`parse_header` gives them): a rule whose values
    are the very objects of the previous call gives its previous result (see _Promoter).
    """
    software = _software(cards)
    p = _PROMOTERS[software]
    get = cards.get
    values = tuple(map(get, p.keywords))
    last = p.last
    todo: Any
    if last is None:
        todo, results, by_rule = range(len(p.plans)), {}, {}
    else:
        todo = set(compress(p.rule_of, map(is_not, values, last[0])))
        results, by_rule = last[1], last[2]
        if todo:
            results = results.copy()
            by_rule = by_rule.copy()
    for r in todo:
        name, at, lo, hi, conv, candidates = p.plans[r]
        if at >= 0:  # inline, when the first candidate gives the result (as _apply would)
            value = values[at]
            kind = type(value)
            if kind is float and value - value == 0.0 and lo <= value <= hi:
                results[name] = value
                if by_rule:
                    by_rule.pop(r, None)
                continue
            if value is not None and (kind is not str or value.strip()):
                if conv is _text and kind is str:
                    value = value.strip()
                    result = value if value != "None" else None
                else:
                    try:
                        result = conv(value)  # type: ignore[misc]
                    except (ValueError, TypeError, OverflowError):
                        result = None  # _apply says why, and tries the other candidates
                if result is not None:
                    results[name] = result
                    if by_rule:
                        by_rule.pop(r, None)
                    continue
        results[name], problems = _apply(candidates, get)
        if problems:
            by_rule[r] = problems
        elif by_rule:
            by_rule.pop(r, None)
    p.last = (values, results, by_rule)
    out = results.copy()
    out["software"] = software
    warned = [m for r in sorted(by_rule) for m in by_rule[r]] if by_rule else []
    date_obs = out["date_obs"]
    if date_obs is not None:
        mjd = (date_obs - _MJD_EPOCH).total_seconds() / 86400.0  # cheaper than astropy.time, same to ~1 us
        if out["mjd"] is None:
            out["mjd"] = mjd
        elif abs(out["mjd"] - mjd) > 0.001:
            warned.append(f"MJD: {out['mjd']} disagrees with DATE-OBS {date_obs.isoformat()}")
    if out["jd"] is None and out["mjd"] is not None:
        out["jd"] = out["mjd"] + _MJD_TO_JD
    out["_warnings"] = warned
    return out
