"""rawdata.header fast paths: layout templates, the bulk field readers, the read-size hint, the
promote() memo. Each must give exactly what the general path (or astropy, or a cold promote) gives.

The general parser is checked against astropy in test_header.py; here headers come in sequences
with the caches warm, as in an ingest, so the template path reads most of them.
"""
from __future__ import annotations

import math
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rawdata import header as H
from rawdata.header import HeaderError, parse_header, promote, read_header_bytes
from tests.unit.test_header import REASONS, pad_cards, reference, structural_ok, typed

# ----------------------------------------------------------------------------------- helpers


def cold() -> None:
    """Forget every card, layout and promote memo."""
    H._card_cache.clear()
    H._misses.clear()
    H._templates.clear()
    H._seen.clear()
    for p in H._PROMOTERS.values():
        p.last = None


def check_warm(blob: bytes, name: str) -> H.Header | None:
    """parse_header(blob) with the caches as they are must agree with astropy (see check_blob)."""
    outcome, ref = reference(blob)
    if outcome == "ok" and structural_ok(ref):
        got = parse_header(blob)
        assert typed(got.cards) == typed(ref), name
        if got.layout is not None:  # stored as the layout's cards plus its changes, it reads back the same
            assert typed(got.layout.merge(got.layout.changes(got.cards))) == typed(ref), name
            assert typed(H.merge_cards(got.layout.shared(), got.layout.changes(got.cards))) == typed(ref), name
            assert set(got.layout.changed) <= set(got.cards)
        return got
    with pytest.raises(HeaderError) as info:
        parse_header(blob)
    expected = {"ok": {"bad_header"}, "bad": {"bad_header"}, "non_ascii": {"non_ascii"}, "fail": REASONS}[outcome]
    assert info.value.reason in expected, f"{name}: astropy {outcome} {ref!r:.200}, we {info.value}"
    return None


def count_general(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """A list that grows by one each time the general path parses a header."""
    calls: list[int] = []
    real = H._parse_general

    def spy(head: bytes) -> Any:
        calls.append(1)
        return real(head)

    monkeypatch.setattr(H, "_parse_general", spy)
    return calls


def num(key: str, field: str, comment: str = " / a number") -> str:
    """A value card with ``field`` in columns 11-30 (given as is, so it may be malformed)."""
    return f"{key:<8}= {field:>20}{comment}"


def text(key: str, content: str, comment: str = " / a string") -> str:
    return f"{key:<8}= '{content}'{comment}"


PADDED = "           / padded"  # the comment of a string right-justified like a number

# A header with every kind of field: volatile floats, ints and strings (the first of a repeated
# keyword and a later one), a boolean, a commentary run, a blank-keyword card.
BASE: dict[str, str] = {
    "SIMPLE": num("SIMPLE", "T"),
    "BITPIX": num("BITPIX", "16"),
    "NAXIS": num("NAXIS", "2"),
    "NAXIS1": num("NAXIS1", "24"),
    "NAXIS2": num("NAXIS2", "16"),
    "ALT": num("ALT", "19.616259"),
    "AIRMASS": num("AIRMASS", "-1.350312151219431", ""),
    "GAIN": num("GAIN", "2750"),
    "DATEOBS": text("DATE-OBS", "2025-06-30T23:30:00.000"),
    "FILTER": text("FILTER", "m650    ", PADDED),
    "IMAGEID": text("IMAGEID", "31d60a56b47e4c7fb0e6ed8463543fb7", ""),
    "FLAG": num("FLAG", "T"),
    "DUPF1": num("DUPF", "1.5", " / first"),
    "DUPF2": num("DUPF", "2.5", " / second"),
    "DUPS1": text("DUPS", "first   "),
    "DUPS2": text("DUPS", "second  "),
    "HIST1": "HISTORY written by a test",
    "HIST2": "HISTORY second line",
    "BLANK": "        blank keyword text",
    "COMM": "COMMENT a comment",
}


def header(**changes: str) -> bytes:
    cards = dict(BASE)
    cards.update(changes)
    return pad_cards(list(cards.values()))


# ------------------------------------------------------------------------------ template path


def test_plain_variations_take_the_template_path(monkeypatch: pytest.MonkeyPatch):
    cold()
    rng = random.Random(3)
    blobs = []
    for i in range(60):
        blobs.append(header(
            ALT=num("ALT", repr(rng.uniform(-90, 90))),
            AIRMASS=num("AIRMASS", repr(rng.uniform(1, 3)), ""),
            GAIN=num("GAIN", str(rng.randint(-5000, 5000))),
            DATEOBS=text("DATE-OBS", f"2025-06-30T23:{i:02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}"),
            FILTER=text("FILTER", rng.choice(["m650    ", "m425    ", "r       "]), PADDED),
            IMAGEID=text("IMAGEID", f"{rng.getrandbits(128):032x}", ""),
            FLAG=num("FLAG", rng.choice("TF")),
            DUPF1=num("DUPF", repr(rng.random()), " / first"),
            DUPF2=num("DUPF", repr(rng.random()), " / second"),
            DUPS2=text("DUPS", rng.choice(["second  ", "other   "])),
            HIST2=f"HISTORY line {i}",
        ))
    calls = count_general(monkeypatch)
    for n, blob in enumerate(blobs):
        check_warm(blob, f"header {n}")
    assert len(calls) <= 3, len(calls)  # the first, then once to learn which cards vary
    assert len(H._templates) == 1
    # Stored as a layout, a header keeps only the cards that varied (of 22): no stable card is copied.
    (template,) = H._templates.values()
    assert set(template.layout.changed) == {"ALT", "AIRMASS", "GAIN", "DATE-OBS", "FILTER", "IMAGEID", "FLAG", "DUPF", "HISTORY"}


# Value fields that are not the common fixed forms, or not valid at all: each must still be read
# as astropy reads it (or given to astropy), wherever it appears in a sequence.
ODD_NUMBERS = [
    "1.5D3", "1.5D-3", "1.5d3", "1.5e3", "1.5E3", "1E5", "1E999", "-1E999", "1E-999", "1.5 E3", "1 5",
    "- 5", "+5", "-0", "-0.0", "0.0", "+007.5", ".5", "5.", "007", "12345678901234567890", "1.2.3",
    "--5", "+-5", "1_000", "1_0.5", "inf", "nan", "INF", "0x10", "T", "F", "", "1.5      ", "   ",
    "'str'", "(1, 2)", "1.5/x", "\t1.5", "1.5\x01", "1.5\xe9",
]
ODD_STRINGS = [
    "it's ok ", "a'' b   ", "''      ", "a: b    ", "Note:   ", "a:b     ", "abc:    ", "x\ty     ",
    "x\x01y    ", "caf\xe9   ", "        ", "a/b     ", "é       ", "        x", "short",
]


@pytest.mark.parametrize("field", ODD_NUMBERS, ids=repr)
def test_odd_number_fields_in_a_sequence(field: str):
    cold()
    for blob in (header(), header(ALT=num("ALT", "20.5"), GAIN=num("GAIN", "2751")), header(ALT=num("ALT", field)),
                 header(GAIN=num("GAIN", field)), header(DUPF2=num("DUPF", field, " / second")),
                 header(AIRMASS=num("AIRMASS", field, "")), header(ALT=num("ALT", "21.5"))):
        check_warm(blob, repr(field))


@pytest.mark.parametrize("content", ODD_STRINGS, ids=repr)
def test_odd_string_fields_in_a_sequence(content: str):
    cold()
    padded = content[:8].ljust(8)
    for blob in (header(), header(FILTER=text("FILTER", "m425    ", PADDED)),
                 header(FILTER=text("FILTER", padded, PADDED)),
                 header(DATEOBS=text("DATE-OBS", content.ljust(23)[:23])),
                 header(DUPS2=text("DUPS", padded)), header(DUPS1=text("DUPS", padded)),
                 header(FILTER=text("FILTER", content, PADDED)),
                 header(FILTER=text("FILTER", "r       ", PADDED))):
        check_warm(blob, repr(content))


def test_whole_cards_in_a_sequence(monkeypatch: pytest.MonkeyPatch):
    """Cards that vary in other ways (booleans, commentary text, a moving comment) are read whole."""
    cold()
    variants = [
        header(FLAG=num("FLAG", "F"), HIST2="HISTORY another line", BLANK="        other blank text"),
        header(FLAG=num("FLAG", "T"), COMM="COMMENT changed", HIST1="HISTORY first changed"),
        header(FLAG=num("FLAG", "F"), HIST2="HISTORY \x01control"),
        header(FLAG=num("FLAG", "F"), HIST2="HISTORY = looks like a value"),
        header(FLAG=num("FLAG", "x")),
        header(HIST1="HISTOR  not commentary"),
        header(FLAG="FLAG    = 'now a string'"),
        header(FLAG=num("FLAG", "T"), HIST2="HISTORY line"),
    ]
    for n, blob in enumerate(variants * 2):
        check_warm(blob, f"variant {n % len(variants)}")


def test_layout_changes_and_lengths():
    """A keyword inserted or moved, a longer header, END-like cards: never read with the old layout."""
    cold()
    cards = list(BASE.values())
    blobs = [
        pad_cards(cards),
        pad_cards(cards[:5] + [num("EXTRA", "1")] + cards[5:-1]),  # same length, layout shifted
        pad_cards(cards[:5] + cards[6:] + [num("ALT", "3.5")]),  # same keywords, other order
        pad_cards(cards + [f"HISTORY padding {i}" for i in range(40)]),  # two blocks
        pad_cards(cards[:6] + ["END"] + cards[7:]),  # an early END card
        pad_cards(cards[:6] + ["END     junk"] + cards[7:]),
        pad_cards(cards[:6] + ["CONTINUE  'x'"] + cards[7:]),
        pad_cards(cards),
        pad_cards(cards)[: 21 * 80] + b"END".ljust(80),  # no padding after END
        pad_cards(cards) + b"\0" * 2880,  # data after the header
    ]
    for _ in range(2):
        for n, blob in enumerate(blobs):
            check_warm(blob, f"blob {n}")


def test_structural_cards_may_vary():
    cold()
    for naxis1 in ("24", "25", "1000", "-1", "2.5", "24"):
        got = check_warm(header(NAXIS1=num("NAXIS1", naxis1)), naxis1)
        if got is not None:
            assert got.data_bytes == 2 * 16 * int(naxis1)


def test_non_ascii_in_a_volatile_field_is_non_ascii():
    cold()
    parse_header(header())
    parse_header(header(FILTER=text("FILTER", "m425    ", PADDED)))
    with pytest.raises(HeaderError) as info:
        parse_header(header(FILTER=text("FILTER", "m\xe925    ", PADDED)))
    assert info.value.reason == "non_ascii"


def test_cold_card_cache_forgets_layouts(monkeypatch: pytest.MonkeyPatch):
    """Clearing the card cache (as test_header.check_blob and the cold benchmark do) clears the
    templates too, so the next header goes through the general parser."""
    cold()
    calls = count_general(monkeypatch)
    for _ in range(4):
        parse_header(header())
    assert len(calls) == 2 and H._templates  # a template from the second header of the layout on
    H._card_cache.clear()
    parse_header(header())
    assert len(calls) == 3 and not H._templates


def test_a_new_layout_costs_no_template_until_it_repeats(monkeypatch: pytest.MonkeyPatch):
    """Headers that all differ in layout (a mixed folder) are only remembered, not templated."""
    cold()
    built = count_general(monkeypatch)
    real = H._build_template
    builds: list[int] = []
    monkeypatch.setattr(H, "_build_template", lambda *a: builds.append(1) or real(*a))
    cards = list(BASE.values())
    for k in range(6):
        check_warm(pad_cards(cards[: 5 + k] + [num(f"X{k}", "1")] + cards[5 + k :]), f"layout {k}")
    assert len(built) == 6 and not builds
    check_warm(pad_cards(cards[:5] + [num("X0", "2")] + cards[5:]), "layout 0 again")  # same length as all
    check_warm(pad_cards(cards[:5] + [num("X0", "3")] + cards[5:]), "layout 0 again")
    assert len(builds) == 1


def test_values_are_not_shared_mutable_state():
    """Each header gets its own dict and commentary lists: callers may change them."""
    cold()
    first = parse_header(header())
    first.cards["HISTORY"].append("changed by a caller")
    first.cards["ALT"] = "changed"
    again = parse_header(header())
    assert again.cards["HISTORY"] == ["written by a test", "second line"]
    assert again.cards["ALT"] == 19.616259
    third = parse_header(header(ALT=num("ALT", "1.25")))
    assert third.cards["HISTORY"] == ["written by a test", "second line"] and third.cards["ALT"] == 1.25
    third.cards["HISTORY"].append("changed again")
    assert third.layout is not None and third.layout.base["HISTORY"] == ["written by a test", "second line"]
    assert third.layout.changes(third.cards)["ALT"] == 1.25


FIELD = st.text(st.sampled_from("0123456789+-.EeD TF'/:a\x01"), max_size=20)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(["ALT", "GAIN", "AIRMASS", "DUPF2", "FILTER", "DUPS1", "FLAG"]), FIELD),
                min_size=1, max_size=6))
@example([("ALT", "1.5D3")])
@example([("GAIN", "1E999")])
@example([("FILTER", "a'b")])
def test_property_sequences(changes: list[tuple[str, str]]):
    """Random field contents, one after the other, with the caches warm."""
    cold()
    check_warm(header(), "base")
    learn = header(ALT=num("ALT", "2.5"), GAIN=num("GAIN", "7"), FILTER=text("FILTER", "r       ", PADDED))
    check_warm(learn, "learn")
    for slot, field in changes:
        if slot in ("FILTER", "DUPS1"):
            key = "FILTER" if slot == "FILTER" else "DUPS"
            blob = header(**{slot: text(key, field[:8].ljust(8), PADDED if slot == "FILTER" else " / a string")})
        else:
            key = "DUPF" if slot == "DUPF2" else slot
            blob = header(**{slot: num(key, field, "" if slot == "AIRMASS" else " / x")})
        check_warm(blob, repr((slot, field)))


# ------------------------------------------------------------------------------ field readers


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("0123456789+-.EeD T_x\t"), max_size=20))
@example("1E999")
@example("  1.5D3")
@example("")
def test_number_field_is_parse_card(field: str):
    """_number_field gives _parse_card's value for a right-justified field, or declines."""
    card = num("KEY", field, " / comment").encode("latin-1")
    got = H._number_field(card[10:30])
    if got is not None:
        pair = H._parse_card(card)
        assert pair is not None and type(pair[1]) is type(got) and pair[1] == got
        assert math.copysign(1, pair[1]) == math.copysign(1, got)


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("ab :/'\x01 é"), min_size=1, max_size=12))
def test_string_field_is_parse_card(content: str):
    card = text("KEY", content, " / comment").encode("latin-1")
    got = H._string_field(card[11 : 11 + len(content.encode("latin-1"))])
    if got is not None:
        assert H._parse_card(card) == ("KEY", got)


# ---------------------------------------------------------------------------- find END, read


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([b"END".ljust(80), b"END     x".ljust(80), b"EXPTIME =  1".ljust(80), b" " * 80,
                                 b"E" * 80, b"XEND".ljust(80)]), max_size=12),
       st.integers(0, 1000), st.binary(max_size=100))
def test_find_valid_end_is_the_first_aligned_card(cards: list[bytes], start: int, tail: bytes):
    buf = b"".join(cards) + tail
    i = buf.find(H._END_BYTES, start)
    while i != -1 and i % 80:
        i = buf.find(H._END_BYTES, i + 1)
    assert H._find_valid_end(buf, start) == i


def test_find_valid_end_with_the_same_card_starts():
    """Buffers whose cards start with the same bytes reuse the last scan's 'E' cards: each is
    still compared, so an END card that appears, moves or disappears is found as a full scan would."""
    end, exptime, endx, blank = b"END".ljust(80), b"EXPTIME =  1".ljust(80), b"ENDX    =  1".ljust(80), b" " * 80
    variants = [
        [exptime, end, blank], [end, end, blank], [end, exptime, blank], [exptime, exptime, blank],
        [endx, end, blank], [end + b"", b"E" * 80, blank], [exptime, end[:40]], [exptime, end],
    ]
    for cards in variants * 3:
        for start in (0, 1, 80, 81, 160):
            buf = b"".join(cards)
            i = buf.find(H._END_BYTES, start)
            while i != -1 and i % 80:
                i = buf.find(H._END_BYTES, i + 1)
            assert H._find_valid_end(buf, start) == i, (cards, start)


def _frame(path: Path, cards: int, *, end: bool = True, extra: bytes = b"") -> Path:
    raw = b"".join(num(f"K{i:07d}", str(i)).encode().ljust(80) for i in range(cards))
    raw = num("SIMPLE", "T").encode().ljust(80) + raw + (b"END".ljust(80) if end else b"")
    raw = raw.ljust(-(-len(raw) // 2880) * 2880) + extra
    path.write_bytes(raw)
    return path


def _reference_read(path: Path, max_blocks: int = 200) -> bytes | str:
    """What read_header_bytes must return: the blocks up to the first END card (or the reason)."""
    data = path.read_bytes()
    if not data:
        return "empty"
    if not data.startswith(b"SIMPLE  ="):
        return "truncated_header" if len(data) < 9 and b"SIMPLE  =".startswith(data) else "not_fits"
    first = data[: min(6, max_blocks) * 2880]
    pos = H._find_valid_end(first)
    if pos < 0:
        pos = H._find_end(data[: max_blocks * 2880])
        if pos < 0:
            return "truncated_header" if len(data) < max_blocks * 2880 else "no_end"
    size = (pos // 2880 + 1) * 2880
    return data[:size] if len(data) >= size else "truncated_header"


def test_read_size_hint_never_changes_the_result(tmp_path: Path):
    """Files of other sizes after one another (the first read asks for the last header's size)."""
    files = [
        _frame(tmp_path / "a.fits", 100), _frame(tmp_path / "b.fits", 200), _frame(tmp_path / "c.fits", 30),
        _frame(tmp_path / "d.fits", 400), _frame(tmp_path / "e.fits", 100, extra=b"\1" * 9000),
        _frame(tmp_path / "f.fits", 170, end=False), _frame(tmp_path / "g.fits", 20, end=False),
        _frame(tmp_path / "h.fits", 178), _frame(tmp_path / "i.fits", 179), _frame(tmp_path / "j.fits", 180),
    ]
    early = tmp_path / "k.fits"  # an END-like card in block 1, a valid END in block 5
    raw = (b"SIMPLE  =                    T".ljust(80) + b"END     junk".ljust(80)).ljust(4 * 2880)
    early.write_bytes(raw + b"END".ljust(2880) + b"\0" * 100)
    two = tmp_path / "l.fits"  # two valid END cards
    simple = b"SIMPLE  =                    T".ljust(80)
    two.write_bytes((simple + b"END".ljust(80)).ljust(3 * 2880) + b"END".ljust(2880))
    files += [early, two, tmp_path / "a.fits"]
    empty = tmp_path / "m.fits"
    empty.write_bytes(b"")
    short = tmp_path / "n.fits"
    short.write_bytes(b"SIMP")
    files += [empty, short, _frame(tmp_path / "o.fits", 100)]
    rng = random.Random(1)
    for path in files + rng.sample(files * 3, 3 * len(files)):
        for max_blocks in (200, 3, 1):
            expected = _reference_read(path, max_blocks)
            if isinstance(expected, bytes):
                assert read_header_bytes(path, max_blocks=max_blocks) == expected, (path.name, max_blocks)
            else:
                with pytest.raises(HeaderError) as info:
                    read_header_bytes(path, max_blocks=max_blocks)
                assert info.value.reason == expected, (path.name, max_blocks, info.value)


def test_unreadable_messages_are_those_of_open(tmp_path: Path):
    """os.open reports a directory only at read time: the message still names it, as open() does."""
    for path in (tmp_path, str(tmp_path), tmp_path / "missing.fits"):
        try:
            open(path, "rb", buffering=0).close()
            expected = None
        except OSError as exc:
            expected = str(exc)
        with pytest.raises(HeaderError) as info:
            read_header_bytes(path)
        assert info.value.reason == "unreadable" and info.value.detail == expected


# ------------------------------------------------------------------------------------ promote

UTC = timezone.utc
POOL: list[Any] = [
    None, "", "   ", "None", "LIGHT", " light ", "T09000", "m650", 1, 2, 1.0, 2.0, 1.5, -0.0, 0.0, True, False,
    math.nan, math.inf, 100.0, 2750, "2750", "12:40:08.88", "-16:07:55.56", "08 09 50", "25:00:00", 190.037,
    -16.1321, 400.0, -95.0, 45.0, "False", "T", "maybe", "2025-05-23T00:58:10.000", "2025-05-23 00:58:10",
    "2025-05-23T00:58:10+05:00", "yesterday", "2025-05-22T20:58:10.5", 60818.04039351852, 60000.0,
    2460818.5403935187, 12.5, 250.0, 0.4, "/home/kds/.tcspy/sync/log/7DT01", "N.I.N.A. 2.2.0.9001 ",
    "31d60a56b47e4c7fb0e6ed8463543fb7", 1e300, "1D3", "0x10", (1 + 2j),
]
KEYWORDS = sorted({k for p in H._PROMOTERS.values() for k in p.keywords} | {"LOGPATH", "SWCREATE"})


def cold_promote(cards: dict[str, Any]) -> dict[str, Any]:
    saved = {s: p.last for s, p in H._PROMOTERS.items()}
    for p in H._PROMOTERS.values():
        p.last = None
    try:
        return promote(cards)
    finally:
        for s, p in H._PROMOTERS.items():
            p.last = saved[s]


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal with types and float signs (nan equal to nan)."""
    def key(v: Any) -> Any:
        if isinstance(v, float):
            return ("f", "nan" if v != v else v, math.copysign(1, v))
        if isinstance(v, datetime):
            return ("d", v, v.tzinfo, v.fold)
        return (type(v).__name__, v)

    return list(a) == list(b) and all(key(a[k]) == key(b[k]) for k in a)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.dictionaries(st.sampled_from(KEYWORDS), st.sampled_from(range(len(POOL))), max_size=25),
                min_size=1, max_size=8), st.randoms(use_true_random=False))
def test_promote_memo_is_a_cold_promote(frames: list[dict[str, int]], rnd: random.Random):
    """Frames sharing value objects (and equal but distinct ones): as if each were promoted alone."""
    base = {k: POOL[rnd.randrange(len(POOL))] for k in KEYWORDS if rnd.random() < 0.7}
    for frame in frames:
        cards = dict(base)
        for k, i in frame.items():  # sometimes an equal copy, not the same object
            v = POOL[i]
            cards[k] = (v + "x")[:-1] if isinstance(v, str) and rnd.random() < 0.5 else v
        expected = cold_promote(cards)
        got = promote(cards)
        assert same(got, expected), (cards, got, expected)
        assert got["_warnings"] == expected["_warnings"]
        got["_warnings"].append("a caller's change")  # must not leak into the next result
        got["exptime"] = "changed"


def test_promote_results_are_fresh_objects():
    cards = {"EXPTIME": 100.0, "DATE-OBS": "yesterday", "IMAGEID": "x"}
    a, b = promote(cards), promote(cards)
    assert a is not b and a["_warnings"] is not b["_warnings"] and a == b and a["_warnings"]


@pytest.mark.parametrize("text", [
    "2025-06-30", "2025-06-30T23", "2025-06-30T23:30", "2025-06-30 23:30:00.5", "2025-06-30T23:30:00Z",
    "20250630T233000", "2025-W26-1", "2025-06-30T23:30:00+05:00", "2025-06-30T23:30:00-05",
    "  2025-06-30T23:30:00.123456  ", "2025-06-30T23:30:00.", "2025-06-30T24:00:00", "yesterday", "",
])
def test_dates_as_before(text: str):
    """_utc/_local as fromisoformat + replace(tzinfo=...) (the slow, obvious reading)."""
    def old_utc(v: str) -> datetime:
        d = datetime.fromisoformat(v.strip())
        return d.replace(tzinfo=UTC) if d.tzinfo is None else d.astimezone(UTC)

    def old_local(v: str) -> datetime:
        return datetime.fromisoformat(v.strip()).replace(tzinfo=None)

    for new, old in ((H._utc, old_utc), (H._local, old_local)):
        try:
            expected: Any = old(text)
        except ValueError as exc:
            with pytest.raises(ValueError, match=str(exc).replace("(", r"\(").replace(")", r"\)")):
                new(text)
            continue
        got = new(text)
        assert (got, got.tzinfo, got.fold, type(got)) == (expected, expected.tzinfo, expected.fold, type(expected))
