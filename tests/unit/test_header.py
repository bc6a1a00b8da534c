"""rawdata.header: the fast header parser must read every card exactly as astropy does.

astropy is the reference (SPEC section 2): each corpus header is parsed by both, and the cards must
agree keyword by keyword with identical Python types and exact float equality, or the fast path
must have handed the header to astropy (``via_astropy``) and still agree. A header astropy cannot
read must give a HeaderError with a reason code, never another exception.
"""
from __future__ import annotations

import ast
import gzip
import io
import math
import os
import re
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import astropy
import numpy as np
import pytest
from astropy.io import fits
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rawdata import header as H
from rawdata.header import (
    REASONS,
    Header,
    HeaderError,
    parse_header,
    promote,
    read_header,
    read_header_bytes,
    sexagesimal_to_deg,
)

ASTROPY_ROOT = Path(astropy.__file__).parent
FITS_SUFFIXES = (".fits", ".fit", ".fts", ".hdr", ".fits.gz", ".fits.Z", ".fz", ".head")
CARD_RE = re.compile(rb"^[A-Z0-9 _-]{8}(= |  )")
UTC = timezone.utc


# ------------------------------------------------------------------------------------ reference


def typed(cards: dict[str, Any]) -> list[tuple[str, str, Any]]:
    """Cards with their Python type made explicit (True == 1 and 1 == 1.0 in plain comparisons)."""
    out = []
    for key, value in cards.items():
        if isinstance(value, list):
            value = tuple(value)
        out.append((key, type(value).__name__, value))
    return out


def astropy_mapping(hdr: fits.Header) -> dict[str, Any]:
    """astropy's reading through its public mapping API: ``hdr[key]`` (first card of a repeated
    keyword, None for an empty value) and ``list(hdr['COMMENT'])`` for commentary keywords."""
    out: dict[str, Any] = {}
    first: dict[str, Any] = {}
    for card in hdr.cards:  # every value, so a bad card anywhere raises, as in rawdata.header
        first.setdefault(card.keyword, card.value)
    for key in dict.fromkeys(hdr.keys()):
        if key in ("COMMENT", "HISTORY", ""):
            out[key] = [str(v) for v in hdr[key]]
        elif any(c in key for c in "*?") or key.endswith("..."):  # hdr[key] would be a wildcard search
            out[key] = None if first[key] is fits.card.UNDEFINED else first[key]
        else:
            out[key] = hdr[key]
    return out


def reference(blob: bytes) -> tuple[str, Any]:
    """('ok', cards) | ('bad', why) | ('non_ascii', why) | ('fail', why) as astropy reads ``blob``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            hdr = fits.Header.fromfile(io.BytesIO(blob), padding=False)
        except Exception as exc:  # noqa: BLE001
            return "fail", repr(exc)
        messages = [str(w.message) for w in caught]
        if any("non-ASCII" in m for m in messages) and not blob[: astropy_end_offset(blob)].isascii():
            return "non_ascii", messages  # (astropy also warns for bytes after END, which are padding)
        if any("invalid or follows an unrecognized non-standard convention" in m for m in messages):
            return "bad", messages
        try:
            return "ok", astropy_mapping(hdr)
        except Exception as exc:  # noqa: BLE001 - VerifyError for an unparsable value
            return "bad", repr(exc)


def astropy_end_offset(blob: bytes) -> int:
    """Where astropy's block reader finds the END card (its own regular expression, at a card
    boundary of a 2880-byte block), or len(blob)."""
    for offset in range(0, len(blob), 2880):
        block = blob[offset : offset + 2880]
        for mo in fits.header.HEADER_END_RE.finditer(block):
            if mo.start() % 80 == 0:
                return offset + mo.start()
    return len(blob)


def structural_ok(cards: dict[str, Any]) -> bool:
    """Whether the header states a data size (BITPIX, NAXIS, NAXISn as integers)."""
    def is_int(key: str) -> bool:
        return type(cards.get(key)) is int

    if not (is_int("BITPIX") and is_int("NAXIS")) or cards["BITPIX"] not in (8, 16, 32, 64, -32, -64):
        return False
    if not 0 <= cards["NAXIS"] <= 999:
        return False
    axes_ok = all(is_int(f"NAXIS{n}") and cards[f"NAXIS{n}"] >= 0 for n in range(1, cards["NAXIS"] + 1))
    return axes_ok and all(k not in cards or is_int(k) for k in ("GCOUNT", "PCOUNT"))


def check_blob(blob: bytes, name: str, *, expect_fast: bool | None = None) -> Header | None:
    """parse_header(blob) must agree with astropy's reading of the same bytes."""
    outcome, ref = reference(blob)
    if outcome == "ok" and structural_ok(ref):
        H._card_cache.clear()  # every card through the parser ...
        H._misses.clear()
        got = parse_header(blob)
        assert typed(got.cards) == typed(ref), name
        assert typed(parse_header(blob).cards) == typed(ref), name  # ... and again from the card cache
        if expect_fast is not None:
            assert got.via_astropy is not expect_fast, f"{name}: via_astropy={got.via_astropy}"
        return got
    with pytest.raises(HeaderError) as info:
        parse_header(blob)
    assert info.value.reason in REASONS
    expected = {"ok": {"bad_header"}, "bad": {"bad_header"}, "non_ascii": {"non_ascii"}, "fail": REASONS}[outcome]
    assert info.value.reason in expected, f"{name}: astropy {outcome} {ref!r:.200}, we {info.value}"
    return None


def pad_cards(cards: list[str] | list[bytes]) -> bytes:
    """Card images -> header bytes with END, padded to whole blocks."""
    raw = b"".join((c if isinstance(c, bytes) else c.encode("latin-1")).ljust(80)[:80] for c in cards)
    raw += b"END".ljust(80)
    return raw.ljust(-(-len(raw) // 2880) * 2880, b" ")


def with_minimal(*cards: str | bytes) -> bytes:
    return pad_cards(["SIMPLE  =                    T", "BITPIX  =                    8",
                      "NAXIS   =                    0", *cards])


# ------------------------------------------------------------------------------ astropy's corpus


def _corpus_paths() -> list[Path]:
    paths = []
    for dirpath, _dirs, files in os.walk(ASTROPY_ROOT):
        for fname in files:
            path = Path(dirpath, fname)
            if fname.endswith((".py", ".pyc", ".so")):
                continue
            try:
                with open(path, "rb") as fh:
                    start = fh.read(81)
            except OSError:
                continue
            if fname.endswith(FITS_SUFFIXES) or CARD_RE.match(start):
                paths.append(path)
    return sorted(paths)


CORPUS = _corpus_paths()


def _completed(cards: list[bytes]) -> bytes:
    """A header fragment made parseable: END added, and SIMPLE/BITPIX/NAXIS when it has none."""
    cards = [c for c in cards if not c.startswith(b"END")]
    if not any(c.startswith(b"BITPIX  =") for c in cards):
        return with_minimal(*cards)
    return pad_cards(cards)


def _blobs(path: Path) -> list[tuple[str, bytes, int | None]]:
    """(name, header bytes, astropy's padded data size or None) for every header in the file.

    Header fragments (text files with one card a line, files without END or without BITPIX) are
    also completed into a parseable header, so their cards are compared too.
    """
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    rel = str(path.relative_to(ASTROPY_ROOT))
    if b"\n" in data[:81]:  # a text header, one card a line
        lines = [line.rstrip(b"\r") for line in data.split(b"\n") if line.strip()]
        return [(rel + ":text", _completed(lines), None)]
    out: list[tuple[str, bytes, int | None]] = [(rel, data, None)]
    if data.startswith(b"SIMPLE  ="):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                with fits.open(io.BytesIO(data), lazy_load_hdus=False, disable_image_compression=True) as hdul:
                    infos = [hdul.fileinfo(i) for i in range(len(hdul))]
            except Exception:  # noqa: BLE001 - astropy cannot walk it: the primary header alone
                infos = []
        if infos:
            out = []
            for i, info in enumerate(infos):
                end = infos[i + 1]["hdrLoc"] if i + 1 < len(infos) else len(data)
                out.append((f"{rel}[{i}]", data[info["hdrLoc"] : end], info["datSpan"]))
            return out
    if len(data) % 80 == 0 and (H._find_end(data) < 0 or b"BITPIX  =" not in data[:2880]):
        out.append((rel + ":completed", _completed([data[i : i + 80] for i in range(0, len(data), 80)]), None))
    return out


def test_corpus_is_large():
    blobs = [b for p in CORPUS for b in _blobs(p)]
    assert len(CORPUS) >= 100 and len(blobs) >= 150, (len(CORPUS), len(blobs))


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ASTROPY_ROOT)))
def test_astropy_corpus_headers(path: Path):
    """Every header of every FITS file astropy ships: cards and data size as astropy has them."""
    for name, blob, padded_data in _blobs(path):
        got = check_blob(blob, name)
        if got is not None and padded_data is not None:
            assert -(-got.data_bytes // 2880) * 2880 == padded_data, name


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(ASTROPY_ROOT)))
def test_astropy_corpus_files(path: Path):
    """read_header(path) against astropy.io.fits.getheader(path) on the file itself."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ref = astropy_mapping(fits.getheader(path))
            outcome = "ok"
        except Exception as exc:  # noqa: BLE001
            outcome, ref = "fail", repr(exc)
        if any("invalid or follows an unrecognized" in str(w.message) for w in caught):
            outcome = "bad"
    compressed = path.read_bytes()[:2] in (b"\x1f\x8b", b"\x1f\x9d")
    if outcome == "ok" and structural_ok(ref) and not compressed:
        got = read_header(path)
        if typed(got.cards) != typed(ref):
            # getheader returns the header of the HDU object, which may normalise structural cards
            # (a GroupsHDU with NAXIS = 0 gets NAXIS1 = 0). The cards as written must still agree.
            differing = {k for k in got.cards.keys() | ref.keys() if got.cards.get(k, ...) != ref.get(k, ...)}
            assert differing <= {"NAXIS", "NAXIS1", "GCOUNT", "PCOUNT", "GROUPS", "EXTEND"}, differing
            check_blob(read_header_bytes(path), str(path))
    else:
        with pytest.raises(HeaderError) as info:
            read_header(path)
        assert info.value.reason in REASONS
        if compressed:
            assert info.value.reason == "not_fits"  # raw frames are never gzip'ed whole


def _card_literals() -> list[str]:
    """Card images written as literals in astropy's own FITS tests: a collection of odd cards."""
    found: set[str] = set()
    pattern = re.compile(r"^([A-Za-z0-9 _-]{8}(= |  |=')|(HIERARCH|CONTINUE|COMMENT|HISTORY) )")
    for source in sorted((ASTROPY_ROOT / "io" / "fits" / "tests").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, (str, bytes)):
                value = node.value if isinstance(node.value, str) else node.value.decode("latin-1")
                if len(value) >= 9 and pattern.match(value) and "\n" not in value:
                    found.add(value)
    return sorted(found)


CARD_LITERALS = _card_literals()


def test_astropy_card_literals():
    """Each odd card from astropy's tests, alone in a minimal header."""
    assert len(CARD_LITERALS) >= 100
    for text in CARD_LITERALS:
        cards = [text[i : i + 80] for i in range(0, len(text), 80)]
        check_blob(with_minimal(*cards), repr(text))


# -------------------------------------------------------------------------- hand-written cards

# Cards astropy never writes but another writer might; each is checked against astropy's reading.
ODD_CARDS = [
    "EXPTIME =                100.0 / free-format number",
    "EXPTIME = 100.0",
    "EXPTIME =                1.5D3",
    "EXPTIME =               1.5d-3",
    "EXPTIME =                1.5e3",
    "EXPTIME =               +007.5",
    "EXPTIME =                 1E+5",
    "EXPTIME =                  .5",
    "EXPTIME =                   5.",
    "EXPTIME =                 -0.0",
    "EXPTIME =                1E999",
    "EXPTIME =                  - 5",
    "EXPTIME =                1.2.3",
    "EXPTIME =                 1_000",
    "EXPTIME =                  nan",
    "EXPTIME =                  inf",
    "EXPTIME =                 0x10",
    "EXPTIME = 100.0/no blank before the slash",
    "GAIN    =                 2750",
    "GAIN    =              +000012",
    "GAIN    =                   -0",
    "GAIN    = 123456789012345678901234567890",
    "FLAG    =                    T",
    "FLAG    = T",
    "FLAG    = F / false",
    "FLAG    =                 TRUE",
    "FLAG    =                    t",
    "EMPTY   =",
    "EMPTY   =                      / only a comment",
    "EMPTY   = /",
    "S       = 'LIGHT   '",
    "S       = 'LIGHT'/tight comment",
    "S       = '  leading blanks'",
    "S       = ''",
    "S       = '' / empty string",
    "S       = ''''",
    "S       = 'O''Neil'",
    "S       = 'it's'",
    "S       = 'a'' / b'",
    "S       = '' / it's ok'",
    "S       = 'abc''' / three quotes",
    "S       = '        '",
    "S       = 'unterminated",
    "S       = 'x' trailing",
    "S       = 'AXIS.1: 1'",
    "S       = 'Note: 5'",
    "S       = '12:40:08.88'",
    "S       = 'a/b' / slash inside",
    "S       =  'free-format string'",
    "CPLX    = (1.0, 2.0)",
    "lower   =                    1",
    " LEAD   =                    1",
    "A B     =                    1",
    "KEY=    =                    1",
    "NOEQUALS                     1",
    "SHORT=                       1",
    "KEY     =1",
    "CONTINUE  'orphan'",
    "HIERARCH ESO DET CHIP = 5",
    "COMMENT   a comment   ",
    "COMMENT = not a value",
    "HISTORY history text",
    "        blank keyword text",
    "",
    "ENDING  =                    1",
    "EXTEND  =                    T",
    "TAB     = 'a\tb'",
    "NUL     = 'a\x00b'",
    "CR      =                    1 / comment\r",
    "DUP     =                    1",
]


@pytest.mark.parametrize("card", ODD_CARDS, ids=repr)
def test_odd_cards(card: str):
    check_blob(with_minimal(card), repr(card))


def test_duplicate_keyword_keeps_first():
    blob = with_minimal("DUP     =                    1", "DUP     =                    2", "DUP     = 'three'")
    got = check_blob(blob, "dup", expect_fast=True)
    assert got is not None and got.cards["DUP"] == 1


def test_duplicate_keyword_keeps_first_also_from_cache():
    blob = with_minimal("DUPC    =                    7", "DUPC    =                    8")
    for _ in range(2):  # the second time every card comes from the card cache
        assert parse_header(blob).cards["DUPC"] == 7


def test_early_invalid_end_card_ends_the_header():
    """'END' followed by junk ends the header for astropy; a valid END later must not be used."""
    blob = with_minimal("END     junk", "AFTER   =                    1")
    got = check_blob(blob, "early END")
    assert got is not None and "AFTER" not in got.cards and got.warnings


def test_cards_after_end_are_ignored():
    blob = with_minimal("A       =                    1") + b"B       =                    2".ljust(2880)
    assert "B" not in parse_header(blob).cards


# --------------------------------------------------------------------------- synthetic 7DT headers

TCSPY_CARDS: dict[str, Any] = {
    "ALTITUDE": 75.01939, "AZIMUTH": 19.847798, "RA": 190.036985, "DEC": -16.132114,
    "AIRMASS": 1.034971870019046, "INSTRUME": "Moravian USB Camera 1 (64 bit)",
    "EGAIN": 0.2561904788017273, "CCD-TEMP": -9.9, "SET-TEMP": -10.0, "COLPOWER": 70.7, "GAIN": 2750,
    "FOCUSPOS": 6483.70480437992, "AFTIME": "2025-05-23T00:08:11.512", "AFVALUE": 6483.9, "AFERROR": 19.04,
    "FILTER": "i", "IMAGEID": "8dd92d02de574babb386f346fc8eb224", "IMAGETYP": "LIGHT   ", "EXPTIME": 100.0,
    "EXPOSURE": 100.0, "DATE-OBS": "2025-05-23T00:58:10.000", "DATE-LOC": "2025-05-22 20:58:10.000",
    "JD": 2460818.5403935187, "MJD": 60818.04039351852, "XBINNING": 1, "YBINNING": 1,
    "OBJECT": "T13785", "OBJTYPE": "RIS", "OBJCTRA": "12:40:08.88", "OBJCTDEC": "-16:07:55.56",
    "OBJCTRA_": 190.037, "OBJCTDE_": -16.1321, "OBJCTALT": 74.875, "OBJCTAZ": 21.46,
    "OBJCTHA": "23 40 17.64146595", "OBJCTID": "751a8ccfcde944e4b87470a1b0d7af7a", "MOONSEP": 165.33,
    "OBSMODE": "Spec", "SPECMODE": "specall", "NTELSCOP": 14, "NOTE": "None", "IS_TOO": "False",
    "TELESCOP": "7DT01", "XPIXSZ": 3.76, "YPIXSZ": 3.76, "LOGPATH": "/home/kds/.tcspy/sync/log/7DT01",
    "OBSERVER": "Hyeonho Choi", "MOONPHAS": 0.274, "DATE-WEA": "2025-05-23T00:59:19.346", "AMBTEMP": 16.1,
    "HUMIDITY": 26.6, "PRESSURE": 1020.4, "DEWPOINT": -3.1, "WINDSPED": 0.4, "WINDDIR": 313.6,
    "WINDGUST": 0.5, "SKYBRGHT": 21.64, "SKYTEMP": -18.6, "SKYFWHM": 1.34, "CLUDFRAC": 0.0, "RAINRATE": 0,
    "CENTALT": 75.01939, "CENTAZ": 19.847798, "FOCALLEN": 1537.0, "FOCALRAT": 3, "APTDIA": 0.5,
    "APTAREA": 0.196, "SITELAT": -30.4704, "SITELONG": -70.7804, "SITEELEV": 1580.0,
    "MNT_ID": None, "MID_TIME": None, "CAM_ID": "31093", "CID_TIME": "2026-01-04T12:00:00",
    "FILT_ID": "12345678", "FWIDTIME": None, "FOC_ID": None, "FID_TIME": None,
}
for _dev in ("MNT", "CAM", "FILT", "FOC", "WTER", "SAFE"):
    TCSPY_CARDS.update({f"{_dev}_IP": "10.0.106.6", f"{_dev}_PRT": 11111, f"{_dev}_NUM": 0})

NINA_CARDS: dict[str, Any] = {
    "IMAGETYP": "LIGHT", "EXPOSURE": 120.0, "EXPTIME": 120.0, "DATE-LOC": "2024-05-01T23:23:25.346",
    "DATE-OBS": "2024-05-02T03:23:25.346", "XBINNING": 1, "YBINNING": 1, "GAIN": 2750, "OFFSET": 0,
    "EGAIN": 0.256, "XPIXSZ": 3.76, "YPIXSZ": 3.76, "INSTRUME": "Moravian USB Camera ", "SET-TEMP": -10.0,
    "CCD-TEMP": -9.96, "TELESCOP": "7DT01", "FOCALLEN": 1537.0, "FOCRATIO": 3.0, "RA": 122.4583,
    "DEC": -29.7169, "CENTALT": 62.1, "CENTAZ": 101.3, "AIRMASS": 1.1303, "PIERSIDE": "East",
    "SITEELEV": 1600.0, "SITELAT": -30.4864722, "SITELONG": -70.8385556, "FWHEEL": "Moravian USB Filter ",
    "FILTER": "r", "OBJECT": "T09614", "OBJCTRA": "08 09 50", "OBJCTDEC": "-29 43 01", "OBJCTROT": 0.0,
    "FOCNAME": "Moravian Focuser", "FOCPOS": 7599, "FOCUSPOS": 7599, "FOCUSSZ": 1.0, "CLOUDCVR": 12.5,
    "DEWPOINT": -3.5, "HUMIDITY": 33.0, "PRESSURE": 842.1, "SKYBRGHT": 0.01, "MPSAS": 21.3,
    "SKYTEMP": -21.0, "STARFWHM": 2.1, "AMBTEMP": 11.2, "WINDDIR": 200.0, "WINDGUST": 18.0,
    "WINDSPD": 7.2, "ROWORDER": "TOP-DOWN", "EQUINOX": 2000.0, "SWCREATE": "N.I.N.A. 2.2.0.9001 ",
}

FILLER = [1.5e-7, 12, "text with ''quotes'' inside", True, False, None, -3.25e12, "x", "", 0, "O'Neil"]


def build_7dt_header(cards: dict[str, Any], n_cards: int = 180, seed: int = 0) -> fits.Header:
    """A ~180-card header: the writer's keywords, then filler with mixed types and long comments."""
    hdr = fits.Header()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # astropy shortens over-long comments with a warning
        for i, (key, value) in enumerate(cards.items()):
            comment = "a long comment that astropy will have to cut at the card edge " * (i % 3 == 0)
            hdr[key] = (value, comment or f"{key.lower()} as written by the sequencer")
        i = 0
        while len(hdr) < n_cards - 6:
            hdr[f"X{seed % 7}{i:05d}"] = (FILLER[(i + seed) % len(FILLER)], "filler card" if i % 4 else "")
            i += 1
        hdr.add_comment("written by a synthetic 7DT test")
        hdr.add_history("created for rawdata.header tests")
    return hdr


def header_size(path: Path) -> int:
    """Bytes of the primary header according to astropy."""
    with fits.open(path) as hdul:
        return hdul.fileinfo(0)["datLoc"]


def write_frame(path: Path, hdr: fits.Header, shape=(10, 12)) -> Path:
    data = np.arange(shape[0] * shape[1], dtype=np.uint16).reshape(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.PrimaryHDU(data=data, header=hdr).writeto(path, overwrite=True)
    return path


@pytest.mark.parametrize("writer", ["tcspy", "nina"])
def test_synthetic_7dt_headers_take_the_fast_path(tmp_path: Path, writer: str):
    base = TCSPY_CARDS if writer == "tcspy" else NINA_CARDS
    for seed in range(3):
        path = write_frame(tmp_path / f"{writer}{seed}.fits", build_7dt_header(base, seed=seed))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = astropy_mapping(fits.getheader(path))
        got = read_header(path)
        assert not got.via_astropy
        assert typed(got.cards) == typed(ref)
        assert len(ref) >= 170 and got.header_bytes == header_size(path) in (5 * 2880, 6 * 2880)
        assert got.expected_size == os.path.getsize(path)
        again = read_header(path)  # now from the card cache
        assert typed(again.cards) == typed(ref)


def test_long_string_and_hierarch_go_to_astropy(tmp_path: Path):
    hdr = build_7dt_header(TCSPY_CARDS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hdr["NOTE"] = "a note long enough to need the CONTINUE convention " * 3
        hdr["HIERARCH TCS MOUNT STATE"] = "tracking"
    path = write_frame(tmp_path / "long.fits", hdr)
    got = read_header(path)
    assert got.via_astropy
    assert got.cards["NOTE"] == hdr["NOTE"]
    assert got.cards["TCS MOUNT STATE"] == "tracking"


# ------------------------------------------------------------------------------------ hypothesis

KEYWORDS = st.from_regex(r"\A[A-Z0-9_-]{1,8}\Z").filter(lambda k: k not in {"END", "CONTINUE", "COMMENT", "HISTORY", "SIMPLE", "BITPIX", "NAXIS"} and not k.startswith("NAXIS"))
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
VALUES = st.one_of(
    st.integers(min_value=-(10**18), max_value=10**18),
    st.floats(allow_nan=False, allow_infinity=False),
    st.floats(min_value=-1e-3, max_value=1e-3, allow_nan=False),
    st.text(PRINTABLE, max_size=60),
    st.text(st.sampled_from("'a :/ "), max_size=20),
    st.booleans(),
    st.none(),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(KEYWORDS, st.tuples(VALUES, st.text(PRINTABLE, max_size=30)), min_size=1, max_size=25))
def test_property_astropy_written_cards(cards: dict[str, tuple[Any, str]]):
    hdr = fits.Header([("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, (value, comment) in cards.items():
            hdr[key] = (value, comment)
        blob = hdr.tostring().encode("ascii")
    got = check_blob(blob, "hypothesis")
    assert got is not None
    simple = all(not isinstance(v, str) or (len(v) <= 60 and ": " not in v) for v, _ in cards.values())
    if simple:  # plain cards written by astropy must not need astropy to be read back
        assert not got.via_astropy, blob


VALUE_FIELD = st.text(st.sampled_from("0123456789+-.EeDd TF'/()ab,:"), max_size=24)
CARD_KEYS = st.sampled_from(["A", "B", "DUP", "DUP", "COMMENT", "HISTORY", "", "END", "CONTINUE", "HIERARCH", "a"])


@settings(max_examples=300, deadline=None)
@given(VALUE_FIELD)
@example("1.5D-3")
@example("'a'' / b'")
@example("1E5 / x")
def test_property_raw_value_fields(field: str):
    """Hand-made value fields (not astropy-written): agreement or a bad_header, never a mis-read."""
    check_blob(with_minimal(f"FUZZ    = {field}"), repr(field))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(CARD_KEYS, st.sampled_from(["= ", "  ", "=", " ="]), VALUE_FIELD), max_size=8))
def test_property_raw_card_sequences(cards: list[tuple[str, str, str]]):
    """Repeated keywords, commentary, END-like and CONTINUE cards in any order."""
    check_blob(with_minimal(*(f"{key:<8}{indicator}{field}" for key, indicator, field in cards)), repr(cards))


ANY_BYTE = st.characters(min_codepoint=0, max_codepoint=0xFF)
ANY_FIELD = st.one_of(
    st.text(ANY_BYTE, max_size=70),
    st.builds(lambda a, b: f"'{a}'{b}", st.text(st.sampled_from("ab ':/"), max_size=10), st.text(st.sampled_from("ab ':/"), max_size=10)),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(CARD_KEYS, st.text(ANY_BYTE, max_size=8)), st.sampled_from(["= ", "  ", "=", ""]), ANY_FIELD), max_size=6))
def test_property_arbitrary_cards(cards: list[tuple[str, str, str]]):
    """Any bytes at all (control characters, non-ASCII, odd keywords): agreement or a reason code."""
    check_blob(with_minimal(*(f"{key:<8}{indicator}{field}"[:80] for key, indicator, field in cards)), repr(cards))


# ------------------------------------------------------------------------------------ bad input


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def reason_of(path: Path) -> str:
    with pytest.raises(HeaderError) as info:
        read_header(path)
    assert isinstance(info.value.detail, str) and info.value.detail
    return info.value.reason


def test_empty_file(tmp_path: Path):
    assert reason_of(_write(tmp_path / "e.fits", b"")) == "empty"


@pytest.mark.parametrize("data", [b"\x89PNG\r\n\x1a\n" + b"\0" * 3000, b"hello, this is text\n" * 300, b"XTENSION= 'IMAGE   '".ljust(2880)])
def test_not_fits(tmp_path: Path, data: bytes):
    assert reason_of(_write(tmp_path / "x.fits", data)) == "not_fits"


def test_missing_end_is_no_end_within_max_blocks(tmp_path: Path):
    cards = ["SIMPLE  =                    T"] + [f"K{i:07d}=                    {i}" for i in range(400)]
    raw = b"".join(c.encode().ljust(80) for c in cards)
    path = _write(tmp_path / "noend.fits", raw.ljust(12 * 2880) + b"\0" * 2880 * 4)
    with pytest.raises(HeaderError) as info:
        read_header_bytes(path, max_blocks=10)
    assert info.value.reason == "no_end"
    with pytest.raises(HeaderError) as info:
        parse_header(raw)
    assert info.value.reason == "no_end"


def test_file_ending_mid_header_is_truncated(tmp_path: Path):
    full = write_frame(tmp_path / "full.fits", build_7dt_header(TCSPY_CARDS)).read_bytes()
    for cut in (5, 100, 2880, 8000, len(read_header_bytes(tmp_path / "full.fits")) - 1):
        assert reason_of(_write(tmp_path / "cut.fits", full[:cut])) == "truncated_header", cut


def test_non_ascii_byte(tmp_path: Path):
    raw = bytearray(with_minimal("OBSERVER= 'Hyeonho Choi'"))
    raw[3 * 80 + 12] = 0xE9  # an accented letter
    path = _write(tmp_path / "na.fits", bytes(raw))
    assert reason_of(path) == "non_ascii"
    with pytest.raises(HeaderError) as info:
        parse_header(bytes(raw))
    assert "OBSERVER" in info.value.detail


def test_non_ascii_after_end_is_padding(tmp_path: Path):
    raw = with_minimal("A       =                    1")
    raw = raw[:-10] + b"\xff" * 10  # in the padding after END
    assert parse_header(raw).cards["A"] == 1


def test_unparseable_value_is_bad_header(tmp_path: Path):
    path = _write(tmp_path / "bad.fits", with_minimal("EXPTIME =                1.2.3"))
    with pytest.raises(HeaderError) as info:
        read_header(path)
    assert info.value.reason == "bad_header" and "EXPTIME" in info.value.detail


def test_invalid_card_is_bad_header():
    with pytest.raises(HeaderError) as info:
        parse_header(with_minimal("DATE    2025-05-23"))
    assert info.value.reason == "bad_header" and "DATE" in info.value.detail


def test_unreadable_path(tmp_path: Path):
    assert reason_of(tmp_path) == "unreadable"  # a directory: we run as root, chmod 000 denies nothing
    with pytest.raises(HeaderError) as info:
        read_header(tmp_path / "missing.fits")
    assert info.value.reason == "unreadable" and "No such file" in info.value.detail


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file anyway")
def test_permission_denied(tmp_path: Path):
    path = _write(tmp_path / "p.fits", with_minimal())
    path.chmod(0)
    assert reason_of(path) == "unreadable"


def test_header_and_error_pickle(tmp_path: Path):
    """Worker processes send both back to the parent."""
    import pickle

    got = read_header(write_frame(tmp_path / "p.fits", build_7dt_header(TCSPY_CARDS)))
    back = pickle.loads(pickle.dumps(got))
    assert back.cards == got.cards and back.expected_size == got.expected_size
    err = pickle.loads(pickle.dumps(HeaderError("no_end", "x")))
    assert (err.reason, err.detail) == ("no_end", "x")


def test_header_error_is_plain_exception():
    err = HeaderError("no_end", "detail text")
    assert isinstance(err, Exception) and str(err) == "no_end: detail text"
    assert (err.reason, err.detail) == ("no_end", "detail text")


# ------------------------------------------------------------------------- sizes and reading


def test_expected_size_matches_a_complete_file(tmp_path: Path):
    hdr = fits.Header()
    hdr["OBJECT"] = "T13785"
    data = np.arange(120, dtype=np.uint16).reshape(10, 12)
    path = tmp_path / "u16.fits"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits.PrimaryHDU(data=data, header=hdr).writeto(path)  # BITPIX=16, BZERO=32768
    got = read_header(path)
    assert got.cards["BZERO"] == 32768 and got.cards["BITPIX"] == 16
    assert got.data_bytes == 240 and got.header_bytes == 2880
    assert got.expected_size == os.path.getsize(path) == 5760
    truncated = _write(tmp_path / "cut.fits", path.read_bytes()[:3000])
    assert read_header(truncated).expected_size > os.path.getsize(truncated)


def test_data_bytes_random_groups_and_bintable():
    groups = parse_header(pad_cards(["SIMPLE  =                    T", "BITPIX  =                  -32",
                                      "NAXIS   =                    3", "NAXIS1  =                    0",
                                      "NAXIS2  =                    3", "NAXIS3  =                    4",
                                      "GROUPS  =                    T", "PCOUNT  =                    2",
                                      "GCOUNT  =                    5"]))
    assert groups.data_bytes == 4 * 5 * (2 + 12)
    table = parse_header(pad_cards(["XTENSION= 'BINTABLE'", "BITPIX  =                    8",
                                     "NAXIS   =                    2", "NAXIS1  =                   16",
                                     "NAXIS2  =                  100", "PCOUNT  =                  500",
                                     "GCOUNT  =                    1"]))
    assert table.data_bytes == 1600 + 500


def test_missing_bitpix_is_bad_header():
    with pytest.raises(HeaderError) as info:
        parse_header(pad_cards(["SIMPLE  =                    T", "NAXIS   =                    0"]))
    assert info.value.reason == "bad_header" and "BITPIX" in info.value.detail


def test_long_header_is_read_to_its_end(tmp_path: Path):
    """Never a fixed 8,640 bytes: a 12-block header is read whole."""
    hdr = build_7dt_header(TCSPY_CARDS, n_cards=400)
    path = write_frame(tmp_path / "long.fits", hdr)
    raw = read_header_bytes(path)
    assert len(raw) == header_size(path) > H.FIRST_READ_BLOCKS * 2880
    assert raw.rstrip(b" ").endswith(b"END")
    assert len(read_header(path).cards) >= 390
    with pytest.raises(HeaderError) as info:
        read_header_bytes(path, max_blocks=3)
    assert info.value.reason == "no_end"


def test_first_read_holds_a_typical_header():
    assert H.FIRST_READ_BLOCKS * 2880 >= 6 * 2880


def test_accepts_pathlike_and_str(tmp_path: Path):
    path = write_frame(tmp_path / "p.fits", build_7dt_header(NINA_CARDS))
    assert read_header(str(path)).cards == read_header(path).cards


# ----------------------------------------------------------------------------------- promote()


def tcspy_cards() -> dict[str, Any]:
    cards = dict(TCSPY_CARDS)
    cards.update({"SIMPLE": True, "BITPIX": 16, "NAXIS": 2, "NAXIS1": 9576, "NAXIS2": 6388, "IMAGETYP": "LIGHT"})
    return cards


def test_promote_tcspy_sample():
    meta = promote(tcspy_cards())
    assert set(meta) == set(H.PROMOTED_KEYS) | {"_warnings"}
    assert meta["_warnings"] == []
    assert meta["software"] == "tcspy"
    assert meta["imagetyp"] == "LIGHT" and meta["object"] == "T13785" and meta["filter"] == "i"
    assert meta["date_obs"] == datetime(2025, 5, 23, 0, 58, 10, tzinfo=UTC)
    assert meta["date_loc"] == datetime(2025, 5, 22, 20, 58, 10)
    assert meta["date_loc"].tzinfo is None
    assert meta["mjd"] == 60818.04039351852 and meta["jd"] == 2460818.5403935187
    assert meta["gain"] == 2750 and type(meta["gain"]) is int
    assert meta["exptime"] == 100.0 and meta["xbinning"] == 1 and meta["naxis1"] == 9576
    assert meta["obj_ra"] == 190.037 and meta["obj_dec"] == -16.1321  # the decimal OBJCTRA_/OBJCTDE_
    assert meta["ra"] == 190.036985 and meta["dec"] == -16.132114
    assert meta["is_too"] is False and meta["note"] is None  # TCSpy writes the text 'None'
    assert meta["seeing"] == 1.34 and meta["sky_brightness"] == 21.64 and meta["cloud_frac"] == 0.0
    assert meta["wind_speed"] == 0.4 and meta["wind_gust"] == 0.5
    assert meta["altitude"] == 75.01939 and meta["focus_pos"] == 6483.70480437992
    assert meta["cam_id"] == "31093" and meta["image_id"] == "8dd92d02de574babb386f346fc8eb224"


def test_promote_tcspy_sexagesimal_fallback():
    cards = tcspy_cards()
    del cards["OBJCTRA_"], cards["OBJCTDE_"]
    meta = promote(cards)
    assert meta["obj_ra"] == pytest.approx(190.037, abs=1e-9)
    assert meta["obj_dec"] == pytest.approx(-(16 + 7 / 60 + 55.56 / 3600), abs=1e-12)
    assert meta["obj_dec"] == pytest.approx(-16.1321, abs=1e-4)


def test_promote_nina_sample():
    cards = dict(NINA_CARDS, SIMPLE=True, BITPIX=16, NAXIS=2, NAXIS1=9576, NAXIS2=6388)
    meta = promote(cards)
    assert meta["_warnings"] == []
    assert meta["software"] == "nina"
    assert meta["obj_ra"] == pytest.approx((8 + 9 / 60 + 50 / 3600) * 15)
    assert meta["obj_dec"] == pytest.approx(-(29 + 43 / 60 + 1 / 3600))
    assert meta["date_loc"] == datetime(2024, 5, 1, 23, 23, 25, 346000)
    assert meta["date_obs"] == datetime(2024, 5, 2, 3, 23, 25, 346000, tzinfo=UTC)
    expected_mjd = (meta["date_obs"] - datetime(1858, 11, 17, tzinfo=UTC)).total_seconds() / 86400
    assert meta["mjd"] == pytest.approx(expected_mjd, abs=1e-9) and meta["jd"] == pytest.approx(expected_mjd + 2400000.5)
    assert meta["wind_speed"] == pytest.approx(2.0) and meta["wind_gust"] == pytest.approx(5.0)  # km/h -> m/s
    assert meta["cloud_frac"] == pytest.approx(0.125)  # percent -> fraction
    assert meta["sky_brightness"] == 21.3  # MPSAS, not SKYBRGHT (lux)
    assert meta["seeing"] == 2.1 and meta["focus_pos"] == 7599.0
    assert meta["altitude"] == 62.1 and meta["azimuth"] == 101.3
    assert meta["exptime"] == 120.0 and meta["image_id"] is None


def test_promote_empty_and_bad_values():
    cards = tcspy_cards()
    cards.update({"EXPTIME": None, "EXPOSURE": 30.0, "FILTER": "", "OBJECT": "   ", "GAIN": "lots",
                  "CCD-TEMP": True, "DATE-OBS": "yesterday", "XBINNING": 1.5, "IS_TOO": "maybe",
                  "OBJCTRA_": None, "OBJCTRA": "25:00:00", "DEC": 123.0, "CLUDFRAC": 250.0})
    meta = promote(cards)
    assert meta["exptime"] == 30.0  # EXPTIME empty -> EXPOSURE
    assert meta["filter"] is None and meta["object"] is None
    for key in ("gain", "ccd_temp", "date_obs", "xbinning", "is_too", "obj_ra", "dec", "cloud_frac"):
        assert meta[key] is None, key
    warned = {w.split(":")[0] for w in meta["_warnings"]}
    assert {"GAIN", "CCD-TEMP", "DATE-OBS", "XBINNING", "IS_TOO", "OBJCTRA", "DEC", "CLUDFRAC"} <= warned
    assert meta["mjd"] == 60818.04039351852  # still from the MJD card


def test_promote_absent_everything():
    meta = promote({})
    assert set(meta) == set(H.PROMOTED_KEYS) | {"_warnings"}
    assert meta["software"] == "unknown" and meta["_warnings"] == []
    assert all(v is None for k, v in meta.items() if k not in ("software", "_warnings"))


def test_promote_unknown_writer_skips_ambiguous_units():
    meta = promote({"SKYBRGHT": 21.0, "WINDGUST": 3.0, "WINDSPED": 1.0, "CLOUDCVR": 50.0})
    assert meta["software"] == "unknown"
    assert meta["sky_brightness"] is None and meta["wind_gust"] is None
    assert meta["wind_speed"] == 1.0 and meta["cloud_frac"] == 0.5


def test_promote_variants():
    meta = promote({"DATE-OBS": "2025-05-23 00:58:10", "DATE-LOC": "2025-05-22T20:58:10.5", "IS_TOO": True,
                    "GAIN": 0.5, "CLUDFRAC": 40.0, "IMAGETYP": "light   ", "LOGPATH": "/x/tcspy/log",
                    "RA": "12:40:08.88", "DEC": "-16:07:55.56", "EXPTIME": "100.0", "CENTALT": 40.0})
    assert meta["date_obs"] == datetime(2025, 5, 23, 0, 58, 10, tzinfo=UTC)
    assert meta["date_loc"] == datetime(2025, 5, 22, 20, 58, 10, 500000)
    assert meta["is_too"] is True and meta["gain"] == 0.5 and meta["cloud_frac"] == 0.4
    assert meta["imagetyp"] == "LIGHT" and meta["software"] == "tcspy"
    assert meta["ra"] == pytest.approx(190.037) and meta["dec"] == pytest.approx(-16.132100, abs=1e-6)
    assert meta["exptime"] == 100.0 and meta["altitude"] == 40.0


def test_promote_mjd_disagreeing_with_date_obs_is_reported():
    meta = promote({"DATE-OBS": "2025-05-23T00:58:10", "MJD": 60000.0})
    assert meta["mjd"] == 60000.0 and any(w.startswith("MJD") for w in meta["_warnings"])


@pytest.mark.parametrize(
    ("text", "hours", "expected"),
    [
        ("12:40:08.88", True, 190.037),
        ("08 09 50", True, (8 + 9 / 60 + 50 / 3600) * 15),
        ("-16:07:55.56", False, -(16 + 7 / 60 + 55.56 / 3600)),
        ("-29 43 01", False, -(29 + 43 / 60 + 1 / 3600)),
        ("-00 30 00", False, -0.5),
        ("-00:00:36", False, -0.01),
        ("+05 00", False, 5.0),
        ("  23 59 59.99 ", True, (23 + 59 / 60 + 59.99 / 3600) * 15),
        ("45.5", False, 45.5),
    ],
)
def test_sexagesimal(text: str, hours: bool, expected: float):
    assert sexagesimal_to_deg(text, hours) == pytest.approx(expected, abs=1e-12)
    assert math.copysign(1, sexagesimal_to_deg(text, hours)) == math.copysign(1, expected)


@pytest.mark.parametrize("text", ["", "abc", "12:61:00", "12:30:60", "1:2:3:4", "12:-30:00", "24:00:00", "nan", "12.5:30"])
def test_sexagesimal_rejects(text: str):
    with pytest.raises(ValueError):
        sexagesimal_to_deg(text, hours=True)


def test_module_imports_no_django():
    tree = ast.parse(Path(H.__file__).read_text())
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not any(name.split(".")[0] in ("django", "rest_framework", "survey", "gwportal") for name in imported)
