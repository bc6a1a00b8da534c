"""Read and parse the primary FITS header of a raw 7DT frame, fast, with astropy as the reference.

Framework-free (no Django): the ingest readers run it in worker processes.

Why a hand-written parser: astropy's ``getheader`` costs ~1.3 ms per 180-card header, which caps
ingest at ~750 files/s per core. The 7DT writers (TCSpy, NINA) emit plain FITS-standard 80-character
cards, which a narrow parser reads >10x faster: ``struct`` splits the header into cards in C, a
per-process cache maps card images already seen (most cards of a unit repeat byte for byte) to
their value, and only the new cards are parsed in Python. The fast path accepts only what it
understands completely and reproduces astropy's reading exactly (same keyword, same Python value,
first value of a repeated keyword); anything else (CONTINUE, HIERARCH, record-valued cards, complex
or non-standard numbers, control characters, keywords with illegal characters, an END card with
junk...) is handed to astropy. Bytes outside ASCII are a ``non_ascii`` problem: astropy would
silently turn them into '?'. tests/unit/test_header.py checks all this card by card against
astropy on its own test files and on random cards.

Public API: :func:`read_header_bytes`, :func:`parse_header`, :func:`read_header`, :class:`Header`,
:class:`HeaderError`, :func:`promote`, :func:`sexagesimal_to_deg`.
"""
from __future__ import annotations

import logging
import math
import os
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from itertools import compress
from operator import not_
from typing import Any

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


def _find_valid_end(buf: bytes, start: int = 0) -> int:
    """Offset of a standard END card ('END' + 77 blanks) at a card boundary, or -1.

    Searching for the 80-byte card is ~6x faster than for b'END'. An END-like card earlier on
    (which would end the header first) is caught by the fast parser, which declines it.
    """
    i = buf.find(_END_BYTES, start)
    while i != -1 and i % CARD:
        i = buf.find(_END_BYTES, i + 1)
    return i


def _read_upto(fh: Any, n: int) -> bytes:
    """read() until n bytes or end of file (an unbuffered read may legally return less)."""
    data = fh.read(n)
    if data is None or len(data) >= n or not data:
        return data or b""
    parts = [data]
    got = len(data)
    while got < n:
        more = fh.read(n - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def read_header_bytes(path: str | os.PathLike[str], *, max_blocks: int = 200) -> bytes:
    """The primary header of ``path``: whole 2880-byte blocks up to the one holding END.

    One read() of :data:`FIRST_READ_BLOCKS` blocks, then more only if END is not yet found, so a
    long header is never cut at a fixed size. Raises :class:`HeaderError`.
    """
    limit = max_blocks * BLOCK
    try:
        with open(path, "rb", buffering=0) as fh:
            buf = _read_upto(fh, min(FIRST_READ_BLOCKS * BLOCK, limit))
            if not buf:
                raise HeaderError(EMPTY, "file has 0 bytes")
            if buf[:9] != _SIMPLE:
                if len(buf) < 9 and _SIMPLE.startswith(buf):
                    raise HeaderError(TRUNCATED_HEADER, f"file ends after {len(buf)} bytes")
                raise HeaderError(NOT_FITS, f"does not start with a SIMPLE card: {buf[:20]!r}")
            eof = len(buf) < min(FIRST_READ_BLOCKS * BLOCK, limit)
            pos = _find_valid_end(buf)
            if pos < 0:
                pos = _find_end(buf)
            while pos < 0:
                if eof:
                    raise HeaderError(TRUNCATED_HEADER, f"file ends after {len(buf)} bytes without an END card")
                if len(buf) >= limit:
                    raise HeaderError(NO_END, f"no END card in the first {max_blocks} blocks")
                want = min(len(buf), limit - len(buf))  # double each time
                more = _read_upto(fh, want)
                eof = len(more) < want
                scan_from = len(buf) - len(buf) % CARD
                buf += more
                pos = _find_end(buf, scan_from)  # rare (headers over 6 blocks): exact scan of the new part
            size = (pos // BLOCK + 1) * BLOCK
            if len(buf) < size:
                buf += _read_upto(fh, size - len(buf))
                if len(buf) < size:
                    raise HeaderError(TRUNCATED_HEADER, f"file ends after {len(buf)} bytes, inside the END block")
            return buf[:size]
    except OSError as exc:
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


def _parse_fast(head: bytes) -> dict[str, Any] | None:
    """Cards of ``head`` (whole ASCII cards, END excluded), or None when astropy must decide.

    Mirrors astropy's card grammar (astropy.io.fits.card._value_NFSC_RE) for the standard subset.
    The string rule is astropy's, not the FITS-standard pairing of quotes: the closing quote is the
    first quote after at least one character that is followed only by blanks or a '/' comment.
    """
    n = len(head) // CARD
    splitter = _structs.get(n)
    if splitter is None:
        splitter = _structs[n] = struct.Struct("80s" * n)
    images = splitter.unpack(head)
    cache = _card_cache
    if len(cache) > _CARD_CACHE_MAX:
        cache.clear()
    if len(_misses) > _HEAD_CACHE_MAX:  # (commentary heads are not bounded by _head_cache)
        _misses.clear()
    pairs = list(map(cache.get, images))
    val: Any
    heads = _head_cache
    misses = _misses
    # Performance notes (CPython 3.11): `needle in some_bytes` first tries the needle as an integer
    # and raises and clears a TypeError inside (~2k instructions), so .find() is used instead;
    # bytes.translate() builds its tables on every call, so control characters are looked for with
    # str.isprintable() in the only parts they could hide in (strings, commentary text): keywords,
    # numbers and booleans are checked character by character anyway.
    for i in compress(range(n), map(not_, pairs)):  # the cards not in the cache
        card = images[i]
        head = card[:10]
        key = heads.get(head)
        if key is None:
            ckey = _COMMENTARY.get(card[:8])
            if ckey is not None:  # (keyword, text); the per-header lists are gathered below
                pair = (ckey, card[8:].rstrip(b" ").decode("ascii"))
                if not pair[1].isprintable():  # a control character: astropy decides
                    return None
                count = misses.get(head, 0)
                if count < _VOLATILE_AFTER:  # boilerplate COMMENT/HISTORY lines repeat: cache them
                    misses[head] = count + 1
                    cache[card] = pair
                pairs[i] = pair
                continue
            key = _value_key(head)
            if key is None:
                return None
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
        count = misses.get(head, 0)
        if count < _VOLATILE_AFTER:
            misses[head] = count + 1
            pairs[i] = cache[card] = (key, val)
        else:
            pairs[i] = (key, val)
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
    return cards


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
    raw = bytes(raw)
    cards: dict[str, Any] | None = None
    # From read_header_bytes the END card is in the last block: look there first (an END-like
    # card earlier on makes the fast parser decline, and the exact path below finds it).
    pos = _find_valid_end(raw, max(0, len(raw) - BLOCK))
    if pos < 0:
        pos = _find_valid_end(raw)
    if pos >= 0:
        head = raw[:pos]
        if head.isascii():
            cards = _parse_fast(head)
    notes: list[str] = []
    via_astropy = cards is None
    if cards is None:  # the exact, slow path: first END-like card, byte checks, astropy
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
    return Header(
        cards=cards,
        header_bytes=(pos // BLOCK + 1) * BLOCK,
        data_bytes=_data_bytes(cards),
        via_astropy=via_astropy,
        warnings=tuple(notes),
    )


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
    return d.replace(tzinfo=timezone.utc) if d.tzinfo is None else d.astimezone(timezone.utc)


def _local(v: Any) -> datetime:
    """DATE-LOC: local wall-clock time, naive."""
    if not isinstance(v, str):
        raise TypeError(f"not a date string: {v!r}")
    return datetime.fromisoformat(v.strip()).replace(tzinfo=None)


_ra_range = _ranged(0.0, 360.0)
_dec_range = _ranged(-90.0, 90.0)


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
    ("humidity", (("HUMIDITY", _ranged(0.0, 100.0)),)),
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


def promote(cards: dict[str, Any]) -> dict[str, Any]:
    """Typed database columns from header cards: every key of :data:`PROMOTED_KEYS` plus ``_warnings``.

    Absent, empty or unconvertible values give None; a value that cannot be converted adds
    'KEYWORD: reason' to ``_warnings`` instead of raising, so one odd card never loses a frame.
    """
    out: dict[str, Any] = {}
    problems: list[str] = []
    software = _software(cards)
    get = cards.get
    for rules in (_RULES, _WEATHER[software]):
        for name, candidates in rules:
            result = None
            for keyword, conv in candidates:
                value = get(keyword)
                if value is None:
                    continue
                kind = type(value)
                if kind is float and conv is _float and value - value == 0.0:
                    result = value  # the common case, inline: a finite float needs no conversion
                    break
                if kind is str:
                    text = value.strip()
                    if not text:
                        continue
                    if conv is _text:  # inline too
                        if text != "None":
                            result = text
                            break
                        continue
                try:
                    result = conv(value)
                except (ValueError, TypeError, OverflowError) as exc:
                    problems.append(f"{keyword}: {exc}")
                    continue
                if result is not None:
                    break
            out[name] = result
    out["software"] = software
    date_obs = out["date_obs"]
    if date_obs is not None:
        mjd = (date_obs - _MJD_EPOCH).total_seconds() / 86400.0  # cheaper than astropy.time, same to ~1 us
        if out["mjd"] is None:
            out["mjd"] = mjd
        elif abs(out["mjd"] - mjd) > 0.001:
            problems.append(f"MJD: {out['mjd']} disagrees with DATE-OBS {date_obs.isoformat()}")
    if out["jd"] is None and out["mjd"] is not None:
        out["jd"] = out["mjd"] + _MJD_TO_JD
    out["_warnings"] = problems
    return out
