"""Unit and night-folder names (reference §1, original §1.6)."""

from dataclasses import FrozenInstanceError
from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawdata.folders import (
    SURVEY_START,
    FolderInfo,
    group_by_date,
    is_standard_unit_dir,
    parse_folder_name,
    parse_unit_dir,
    preferred_folder,
)

# ---- unit folders


@pytest.mark.parametrize(("name", "unit"), [("7DT01", "7DT01"), ("7DT20", "7DT20"), ("7DT16", "7DT16"),
                                            ("7DT-01", "7DT01"), ("7DT-11", "7DT11")])
def test_unit_dirs(name, unit):
    assert parse_unit_dir(name) == unit


@pytest.mark.parametrize(
    "name",
    ["", "7DT1", "7DT001", "7dt01", "7DT01_old", " 7DT01", "7DT01 ", "7DT01\n", ".7DT01", "_7DT01",
     "7DT--01", "tmp", "obsdata_from_mcs", "7DT-1", "7DTab", "7DT\u0660\u0661"],
)
def test_not_unit_dirs(name):
    assert parse_unit_dir(name) is None
    assert not is_standard_unit_dir(name)


def test_standard_spelling():
    assert is_standard_unit_dir("7DT01")
    assert not is_standard_unit_dir("7DT-01")  # accepted, but callers report the spelling


# ---- night folders

EXPECTED = {
    # name: (date, tags, gain, binning, is_too, kind, valid)
    "2023-11-14": (date(2023, 11, 14), (), None, None, False, "night", True),
    "2023-10-30": (date(2023, 10, 30), (), None, None, False, "night", True),
    "2024-05-17_gain2750": (date(2024, 5, 17), ("gain2750",), 2750, None, False, "night", True),
    "2024-03-06_2x2": (date(2024, 3, 6), ("2x2",), None, 2, False, "night", True),
    "2024-03-10_2x2_gain0": (date(2024, 3, 10), ("2x2", "gain0"), 0, 2, False, "night", True),
    "2023-11-17_ToO": (date(2023, 11, 17), ("ToO",), None, None, True, "night", True),
    "2023-12-10_flat": (date(2023, 12, 10), ("flat",), None, None, False, "calibration", True),
    "2023-12-08_morning_dark": (date(2023, 12, 8), ("morning", "dark"), None, None, False, "calibration", True),
    "2023-12-09_morning_flat": (date(2023, 12, 9), ("morning", "flat"), None, None, False, "calibration", True),
    "2023-12-11_bias": (date(2023, 12, 11), ("bias",), None, None, False, "calibration", True),
    "2023-12-12_dark": (date(2023, 12, 12), ("dark",), None, None, False, "calibration", True),
    "2025-06-30_gain2750": (date(2025, 6, 30), ("gain2750",), 2750, None, False, "night", True),
    "2026-05-16_gain2750_ToO": (date(2026, 5, 16), ("gain2750", "ToO"), 2750, None, True, "night", True),
    "2025-05-16_ToO_gain2750": (date(2025, 5, 16), ("ToO", "gain2750"), 2750, None, True, "night", True),
    "2025-04-03_gain0": (date(2025, 4, 3), ("gain0",), 0, None, False, "night", True),
    "2025-01-01_1x1_gain2750": (date(2025, 1, 1), ("1x1", "gain2750"), 2750, 1, False, "night", True),
    "2024-01-01_gain1000": (date(2024, 1, 1), ("gain1000",), 1000, None, False, "night", True),
    "2024-01-02_gain1500_3x3": (date(2024, 1, 2), ("gain1500", "3x3"), 1500, 3, False, "night", True),
    "2024-01-03_4x4_gain2000": (date(2024, 1, 3), ("4x4", "gain2000"), 2000, 4, False, "night", True),
    "2024-01-04_too": (date(2024, 1, 4), ("too",), None, None, True, "night", True),
    "2023-00-00": (None, (), None, None, False, "test", True),
    "2024-02-03_test": (date(2024, 2, 3), ("test",), None, None, False, "test", True),
    "2024-02-03_TEST": (date(2024, 2, 3), ("TEST",), None, None, False, "test", True),
    "2024-02-03_gain2750_TEST": (date(2024, 2, 3), ("gain2750", "TEST"), 2750, None, False, "test", True),
    "2024-02-03_focustest": (date(2024, 2, 3), ("focustest",), None, None, False, "test", True),
    "2024-02-04_eng": (date(2024, 2, 4), ("eng",), None, None, False, "test", True),
    "2024-02-05_engineering": (date(2024, 2, 5), ("engineering",), None, None, False, "test", True),
    "2024-02-06_flat_test": (date(2024, 2, 6), ("flat", "test"), None, None, False, "test", True),
    "2026-05-16_gain2750_ToO_2x2": (date(2026, 5, 16), ("gain2750", "ToO", "2x2"), 2750, 2, True, "night", True),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_variants(name):
    info = parse_folder_name(name)
    assert info is not None
    d, tags, gain, binning, is_too, kind, valid = EXPECTED[name]
    assert (info.name, info.date, info.tags, info.gain, info.binning) == (name, d, tags, gain, binning)
    assert (info.is_too, info.kind, info.is_test, info.valid) == (is_too, kind, kind == "test", valid)
    if valid and info.kind != "test":
        assert info.problems == ()


def test_month_00_is_test_data():
    info = parse_folder_name("2023-00-00")
    assert info.is_test and info.kind == "test" and info.date is None
    assert info.problems == ("month 00 marks test data",)
    assert parse_folder_name("2024-00-15_gain2750").is_test


@pytest.mark.parametrize("name", ["2023-13-01", "2023-02-30", "2024-11-00", "2023-12-32", "0000-10-10"])
def test_impossible_dates(name):
    info = parse_folder_name(name)
    assert info is not None
    assert info.date is None
    assert not info.valid
    assert "impossible date" in info.problems
    assert info.kind == "night"


def test_date_before_survey_start():
    assert SURVEY_START == date(2023, 10, 9)
    early = parse_folder_name("2023-10-08")
    assert early.date == date(2023, 10, 8)
    assert not early.valid
    assert early.problems == ("date before survey start 2023-10-09",)
    assert parse_folder_name("2023-10-09").valid


def test_future_dates_only_with_today():
    assert parse_folder_name("2030-01-01").valid
    future = parse_folder_name("2030-01-01", today=date(2026, 1, 1))
    assert not future.valid and "date in the future" in future.problems
    assert parse_folder_name("2026-01-01", today=date(2026, 1, 1)).valid


def test_unknown_token_is_reported_but_still_a_night():
    info = parse_folder_name("2025-06-30_gain2750_xyz")
    assert info.kind == "night"  # still ingestable
    assert info.gain == 2750
    assert not info.valid
    assert info.problems == ("unknown suffix token: xyz",)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("2025-06-30_", "empty suffix token"),
        ("2025-06-30__gain2750", "empty suffix token"),
        ("2025-06-30_gain2750_gain0", "conflicting gain tokens"),
        ("2025-06-30_1x1_2x2", "conflicting binning tokens"),
        ("2025-06-30_morning", "unknown suffix token: morning"),
        ("2025-06-30_gain2750x", "unknown suffix token: gain2750x"),
        ("2025-06-30_Gain2750", None),  # gain is matched case-insensitively
        ("2025-06-30_FLAT", None),
    ],
)
def test_token_problems(name, problem):
    info = parse_folder_name(name)
    if problem is None:
        assert info.valid and info.problems == ()
    else:
        assert not info.valid
        assert problem in info.problems


def test_unusual_gain_and_binning_are_flagged_but_valid():
    gain = parse_folder_name("2025-06-30_gain1234")
    assert gain.valid and gain.gain == 1234 and gain.problems == ("unusual gain: 1234",)
    binning = parse_folder_name("2025-06-30_8x8")
    assert binning.valid and binning.binning == 8 and binning.problems == ("unusual binning: 8x8",)


@pytest.mark.parametrize(
    "name",
    ["", "tmp", ".2025-06-30_gain2750", "_2025-06-30", "20250630", "2025-6-30", "2025-06-30gain2750",
     "2025-06-30-gain2750", "x2025-06-30", "2025/06/30", "2025-06-30\n", "7DT01", "allfiles.hash",
     "2025-06-30_gain2750.tar", "\u0662025-06-30"],
)
def test_not_night_folders(name):
    info = parse_folder_name(name)
    if name == "2025-06-30_gain2750.tar":  # shaped like a folder: reported, not silently dropped
        assert info is not None and not info.valid
    else:
        assert info is None


def test_folder_info_is_frozen():
    with pytest.raises(FrozenInstanceError):
        parse_folder_name("2023-11-14").gain = 1  # type: ignore[misc]


@given(st.text(max_size=40))
def test_parse_folder_name_never_raises(text):
    for candidate in (text, "2025-06-30_" + text):
        result = parse_folder_name(candidate)
        assert result is None or isinstance(result, FolderInfo)


@given(st.dates(min_value=SURVEY_START, max_value=date(2099, 12, 31)),
       st.lists(st.sampled_from(["gain2750", "gain0", "1x1", "2x2", "ToO"]), unique=True, max_size=3))
def test_generated_folders(d, tags):
    gains = [t for t in tags if t.startswith("gain")]
    bins = [t for t in tags if "x" in t]
    name = "_".join([d.isoformat(), *tags])
    info = parse_folder_name(name)
    assert info.date == d and info.tags == tuple(tags)
    assert info.is_too == ("ToO" in tags)
    assert info.valid == (len(gains) <= 1 and len(bins) <= 1)


# ---- grouping and preference


def test_group_by_date():
    names = ["2025-06-30_gain2750", "2025-06-30_gain2750_ToO", "tmp", ".hidden", "2025-07-01_gain2750",
             "2023-00-00", "2025-06-30", "2025-06-30_test"]
    groups = group_by_date(names)
    assert list(groups) == [date(2025, 6, 30), date(2025, 7, 1)]
    assert [f.name for f in groups[date(2025, 6, 30)]] == [
        "2025-06-30", "2025-06-30_gain2750", "2025-06-30_gain2750_ToO", "2025-06-30_test",
    ]
    assert [f.name for f in groups[date(2025, 7, 1)]] == ["2025-07-01_gain2750"]


def test_group_by_date_accepts_folder_infos():
    info = parse_folder_name("2025-06-30_gain2750")
    assert group_by_date([info]) == {date(2025, 6, 30): [info]}
    assert group_by_date([]) == {}


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        (["2025-06-30_gain2750_ToO", "2025-06-30_gain2750"], "2025-06-30_gain2750"),
        (["2025-05-16_ToO_gain2750", "2025-05-16_gain2750"], "2025-05-16_gain2750"),
        (["2024-03-10_2x2_gain0", "2024-03-10_gain2750"], "2024-03-10_gain2750"),
        (["2025-01-01_1x1_gain2750", "2025-01-01_2x2_gain2750"], "2025-01-01_1x1_gain2750"),
        (["2025-01-01_1x1_gain2750", "2025-01-01_gain2750"], "2025-01-01_gain2750"),  # plainest name
        (["2023-11-14", "2023-11-14_flat"], "2023-11-14"),
        (["2024-02-03_test", "2024-02-03_gain0"], "2024-02-03_gain0"),
        (["2024-03-06_2x2", "2024-03-06"], "2024-03-06"),
        (["2026-05-16_gain2750_ToO"], "2026-05-16_gain2750_ToO"),
        (["2025-04-03_gain0", "2025-04-03_gain2750_ToO"], "2025-04-03_gain0"),  # non-ToO first
    ],
)
def test_preferred_folder(names, expected):
    infos = [parse_folder_name(n) for n in names]
    assert preferred_folder(infos).name == expected
    assert preferred_folder(reversed(infos)).name == expected


def test_preferred_folder_needs_input():
    with pytest.raises(ValueError):
        preferred_folder([])
