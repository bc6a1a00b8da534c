"""Raw file-name grammar: TCSpy and the NINA-era families (reference §2, original §1.7)."""

from dataclasses import FrozenInstanceError
from datetime import datetime, timezone

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rawdata.names import FAMILIES, ParsedName, parse_filename, unified_name

UTC = timezone.utc


def _t(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# name -> expected fields (fields not listed must be the dataclass defaults / None as given)
CASES = {
    # ---- TCSpy
    "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits": dict(
        family="tcspy", unit="7DT11", obs_time=_t(2025, 1, 2, 5, 7, 4), object="T00223", filter="m425",
        binning=1, exptime=100.0, sequence=1, imagetyp=None,
    ),
    "7DT01_20250523_101500_BIAS_m425_1x1_0.0s_0000.fits": dict(
        family="tcspy", unit="7DT01", obs_time=_t(2025, 5, 23, 10, 15), object="BIAS", filter="m425",
        binning=1, exptime=0.0, sequence=0, imagetyp="BIAS",
    ),
    "7DT03_20250524_094000_DARK_r_1x1_100.0s_0008.fits": dict(
        family="tcspy", unit="7DT03", object="DARK", filter="r", exptime=100.0, sequence=8, imagetyp="DARK",
    ),
    "7DT05_20250524_223001_FLAT_m650_2x2_3.5s_0002.fits": dict(
        family="tcspy", unit="7DT05", object="FLAT", filter="m650", binning=2, exptime=3.5, imagetyp="FLAT",
    ),
    "7DT01_20240722_012512_NGC6121_shift_m425_1x1_100.0s_0001.fits": dict(
        family="tcspy", object="NGC6121_shift", filter="m425", obs_time=_t(2024, 7, 22, 1, 25, 12),
    ),
    "7DT02_20250301_031500_Defocus_test_WASP-178b_m475_1x1_30.0s_0012.fits": dict(
        family="tcspy", unit="7DT02", object="Defocus_test_WASP-178b", filter="m475", exptime=30.0,
        sequence=12,
    ),
    "7DT16_20260101_020000_GRB240825A_m375w_1x1_100.0s_0003.fits.fz": dict(
        family="tcspy", unit="7DT16", object="GRB240825A", filter="m375w", compressed=True,
    ),
    "7DT01_20250601_011000_filtercheck_Slot4_1x1_1.0s_0000.fits": dict(
        family="tcspy", object="filtercheck", filter="Slot4", exptime=1.0,
    ),
    # DAWN is a science target; the name says nothing about its type
    "7DT01_20250601_011000_DAWN_r_1x1_60.0s_0000.fits": dict(family="tcspy", object="DAWN", imagetyp=None),
    # ---- NINA hyphenated
    "7DT01-20240527-061352-M107-m400-10.0s-0000.fits": dict(
        family="nina_hyphen", unit="7DT01", obs_time=_t(2024, 5, 27, 6, 13, 52), object="M107",
        filter="m400", binning=None, exptime=10.0, sequence=0, imagetyp=None,
    ),
    "7DT02-20240601-010203-WD0123-262-m425-60.0s-0007.fits": dict(
        family="nina_hyphen", unit="7DT02", object="WD0123-262", filter="m425", sequence=7,
    ),
    # ---- NINA v2
    "7DT01_LIGHT_COSMOS_2024-03-11_02-09-07_m675_2x2_120.00s_0005.fits": dict(
        family="nina_v2", unit="7DT01", obs_time=_t(2024, 3, 11, 2, 9, 7), object="COSMOS", filter="m675",
        binning=2, exptime=120.0, sequence=5, imagetyp="LIGHT",
    ),
    "7DT01_FLAT_FlatWizard_2024-03-11_23-09-07_m675_2x2_1.50s_0005.fits": dict(
        family="nina_v2", unit="7DT01", obs_time=_t(2024, 3, 11, 23, 9, 7), object="FlatWizard",
        filter="m675", binning=2, exptime=1.5, sequence=5, imagetyp="FLAT",
    ),
    "7DT01_LIGHT_COSMOS_2_2024-05-27_21-08-01_m425_1x1_120.00s_0015.fits": dict(
        family="nina_v2", object="COSMOS_2", filter="m425", binning=1, sequence=15,
    ),
    "7DT01_LIGHT_Serpens_main_2024-05-09_02-22-26_m400_1x1_120.00s_0000.fits": dict(
        family="nina_v2", object="Serpens_main", filter="m400", binning=1,
    ),
    "7DT04_BIAS__2024-04-01_10-00-00_m500_1x1_0.00s_0003.fits": dict(
        family="nina_v2", unit="7DT04", object=None, filter="m500", imagetyp="BIAS", exptime=0.0,
    ),
    "7DT01_LIGHT_M44_2024-02-01_03-00-00_r_60.00s_0001.fits": dict(  # v2 without binning
        family="nina_v2", object="M44", filter="r", binning=None,
    ),
    # ---- NINA v1
    "LIGHT_Feige110_2023-10-11_23-31-11_i_30.00s_0009.fits": dict(
        family="nina_v1", unit=None, obs_time=_t(2023, 10, 11, 23, 31, 11), object="Feige110", filter="i",
        binning=None, exptime=30.0, sequence=9, imagetyp="LIGHT", prefix=None,
    ),
    "LIGHT_FOCUS7522__WD0123-262_2023-11-02_01-29-23_u_60.00s_0091.fits": dict(
        family="nina_v1", obs_time=_t(2023, 11, 2, 1, 29, 23), object="WD0123-262", filter="u",
        exptime=60.0, sequence=91, imagetyp="LIGHT", prefix="FOCUS7522",
    ),
    "LIGHT_FOCUS7524__Gcluster_Shim_2024-01-04_23-45-26_m675_60.00s_0072.fits": dict(
        family="nina_v1", object="Gcluster_Shim", filter="m675", prefix="FOCUS7524",
    ),
    "DARK_FOCUS7446___2024-01-10_05-16-45_u_10.00s_0002.fits": dict(
        family="nina_v1", object=None, prefix="FOCUS7446", imagetyp="DARK", exptime=10.0, sequence=2,
    ),
    "BIAS__2023-10-11_20-42-45_u_0.00s_0009.fits": dict(
        family="nina_v1", obs_time=_t(2023, 10, 11, 20, 42, 45), object=None, filter="u", exptime=0.0,
        sequence=9, imagetyp="BIAS", prefix=None,
    ),
    "LIGHT_focustest_NGC1980_2023-11-02_01-29-23_r_60.00s_0001.fits": dict(
        family="nina_v1", object="NGC1980", prefix="focustest", filter="r", imagetyp="LIGHT",
    ),
    "LIGHT_NGC1566_20_2023-11-20_02-00-00_g_60.00s_0004.fits": dict(
        family="nina_v1", object="NGC1566_20", prefix=None, filter="g",
    ),
    # ---- NINA v0 (CCD temperature in the name)
    "ObjectName_2023-10-12_03-01-14_r_-9.82_60.00s_0021.fits": dict(
        family="nina_v0", unit=None, obs_time=_t(2023, 10, 12, 3, 1, 14), object="ObjectName", filter="r",
        binning=None, exptime=60.0, sequence=21, imagetyp=None, ccd_temp=-9.82,
    ),
    "DARK_2023-10-11_20-51-11__-9.82_60.00s_0017.fits": dict(
        family="nina_v0", obs_time=_t(2023, 10, 11, 20, 51, 11), object=None, filter=None, exptime=60.0,
        sequence=17, imagetyp="DARK", ccd_temp=-9.82,
    ),
    "DARK_2023-10-11_20-51-11__-9.82_60.00s_$$FRAMENR$.fits": dict(
        family="nina_v0", imagetyp="DARK", sequence=None,
    ),
    "2024-12-23_01-23-58_g_-9.83_100.00s_0000.fits": dict(
        family="nina_v0", object=None, filter="g", ccd_temp=-9.83, exptime=100.0,
    ),
    "LTT1020_2023-10-11_02-58-48_u_$$$$_60.00s_0000.fits": dict(
        family="nina_v0", object="LTT1020", filter="u", ccd_temp=None, exptime=60.0,
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_known_names_parse(name):
    parsed = parse_filename(name)
    assert parsed is not None, name
    for field_name, expected in CASES[name].items():
        assert getattr(parsed, field_name) == expected, (name, field_name)
    assert parsed.family in FAMILIES
    assert parsed.compressed == name.endswith(".fz")
    if parsed.obs_time is not None:
        assert parsed.obs_time.utcoffset().total_seconds() == 0


def test_every_family_is_covered():
    assert {parse_filename(n).family for n in CASES} == set(FAMILIES)


def test_parsed_name_is_frozen():
    parsed = parse_filename("7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits")
    with pytest.raises(FrozenInstanceError):
        parsed.object = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    "name",
    [
        "",
        "allfiles.hash",
        "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.head",
        "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.FITS",  # extension check is lower-case only
        "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fit",
        "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits.gz",
        "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits.tmp",
        ".7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits.AbCdEf",  # rsync temporary
        "dup_7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits",  # TCSpy duplicate copy
        "7DT11/20250102_050704_T00223_m425_1x1_100.0s_0001.fits",  # a path, not a name
        "7DT11_20250102_050704_T00223_m425_1x2_100.0s_0001.fits",  # non-square binning
        "7DT11_20250102_050704_T00223_m425_1x1_100.0_0001.fits",  # no 's'
        "7DT11_20250102_050704_T00223_m425_1x1_100.0s_01.fits",  # short sequence
        "7DT1_20250102_050704_T00223_m425_1x1_100.0s_0001.fits",  # unit needs two digits
        "mask60.fits",
        "bias.fits",
        "master_bias_7DT01_20250101_1x1_gain2750_C31093.fits",
        "T07940_m575_7DT06_20251128_061019_100s.fits",  # processed single, not raw
        "calib_7DT03_T21900_20241020_005010_m500_100.fits",
        "snapshot.fits",
    ],
)
def test_unknown_names_are_none(name):
    assert parse_filename(name) is None


def test_impossible_timestamp_keeps_the_rest():
    parsed = parse_filename("7DT01_20250230_250000_T00001_r_1x1_10.0s_0000.fits")
    assert parsed is not None
    assert parsed.obs_time is None
    assert parsed.object == "T00001"


def test_non_string_input_is_none():
    assert parse_filename(None) is None  # type: ignore[arg-type]
    assert parse_filename(b"7DT01_20250101_000000_T00001_r_1x1_1.0s_0000.fits") is None  # type: ignore[arg-type]


def test_non_ascii_digits_do_not_count():
    assert parse_filename("7DT01_2025010\u0663_000000_T00001_r_1x1_1.0s_0000.fits") is None


# ---- unified name


@pytest.mark.parametrize(
    ("name", "unit", "expected"),
    [
        # TCSpy science names are already unified
        (
            "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits",
            None,
            "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits",
        ),
        (
            "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits.fz",
            None,
            "7DT11_20250102_050704_T00223_m425_1x1_100.0s_0001.fits",
        ),
        # bias and dark drop the (arbitrary) filter; flat keeps it
        (
            "7DT01_20250523_101500_BIAS_m425_1x1_0.0s_0000.fits",
            None,
            "7DT01_20250523_101500_BIAS_1x1_0.0s_0000.fits",
        ),
        (
            "7DT05_20250524_223001_FLAT_m650_2x2_3.5s_0002.fits",
            None,
            "7DT05_20250524_223001_FLAT_m650_2x2_3.5s_0002.fits",
        ),
        (
            "7DT01_LIGHT_COSMOS_2024-03-11_02-09-07_m675_2x2_120.00s_0005.fits",
            None,
            "7DT01_20240311_020907_COSMOS_m675_2x2_120.0s_0005.fits",
        ),
        (
            "7DT01_FLAT_FlatWizard_2024-03-11_23-09-07_m675_2x2_1.50s_0005.fits",
            None,
            "7DT01_20240311_230907_FLAT_m675_2x2_1.5s_0005.fits",
        ),
        (
            "7DT01-20240527-061352-M107-m400-10.0s-0000.fits",
            None,
            "7DT01_20240527_061352_M107_m400_1x1_10.0s_0000.fits",
        ),
        # NINA v0/v1 names carry no unit: the caller supplies it from the folder
        (
            "LIGHT_Feige110_2023-10-11_23-31-11_i_30.00s_0009.fits",
            "7DT01",
            "7DT01_20231011_233111_Feige110_i_1x1_30.0s_0009.fits",
        ),
        (
            "DARK_2023-10-11_20-51-11__-9.82_60.00s_0017.fits",
            "7DT02",
            "7DT02_20231011_205111_DARK_1x1_60.0s_0017.fits",
        ),
        (
            "BIAS__2023-10-11_20-42-45_u_0.00s_0009.fits",
            None,
            "UNKNOWN_20231011_204245_BIAS_1x1_0.0s_0009.fits",
        ),
        (
            "2024-12-23_01-23-58_g_-9.83_100.00s_0000.fits",
            "7DT03",
            "7DT03_20241223_012358_UNKNOWN_g_1x1_100.0s_0000.fits",
        ),
    ],
)
def test_unified_name(name, unit, expected):
    parsed = parse_filename(name)
    assert parsed is not None
    assert unified_name(parsed, unit=unit) == expected


def test_unified_name_prefers_the_name_unit():
    parsed = parse_filename("7DT01-20240527-061352-M107-m400-10.0s-0000.fits")
    assert unified_name(parsed, unit="7DT09").startswith("7DT01_")


def test_unified_name_placeholders():
    bare = ParsedName(
        family="nina_v1", unit=None, obs_time=None, object=None, filter=None, binning=None, exptime=None,
        sequence=None, imagetyp=None,
    )
    assert unified_name(bare) == "UNKNOWN_UNKNOWN_UNKNOWN_unknown_1x1_0.0s_0000.fits"


# ---- properties

_objects = st.text(
    alphabet=st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-+."),
    min_size=1,
    max_size=40,
)
_filters = st.from_regex(r"\A(?:m\d{3}w?|[ugriz]|Slot\d)\Z")
_exptimes = st.floats(min_value=0, max_value=10000, allow_nan=False).map(lambda x: round(x, 1))


@given(
    unit=st.integers(1, 20),
    when=st.datetimes(min_value=datetime(2023, 10, 1), max_value=datetime(2030, 12, 31)),
    obj=_objects,
    filt=_filters,
    binning=st.integers(1, 4),
    exptime=_exptimes,
    seq=st.integers(0, 9999),
    fz=st.booleans(),
)
@example(
    unit=1, when=datetime(2024, 7, 22, 1, 25, 12), obj="NGC6121_shift", filt="m425", binning=1,
    exptime=100.0, seq=1, fz=False,
)
@example(
    unit=2, when=datetime(2025, 1, 1), obj="a_m425_1x1_100.0s_0001", filt="r", binning=1,
    exptime=0.0, seq=0, fz=True,
)
@example(unit=3, when=datetime(2025, 1, 1), obj="_x_", filt="g", binning=2, exptime=1.0, seq=5, fz=False)
def test_tcspy_names_round_trip(unit, when, obj, filt, binning, exptime, seq, fz):
    when = when.replace(microsecond=0)
    # TCSpy writes str(EXPTIME) (one decimal after rounding) and FRAMENUM as %04d
    name = (
        f"7DT{unit:02d}_{when:%Y%m%d_%H%M%S}_{obj}_{filt}_{binning}x{binning}_{exptime}s_{seq:04d}.fits"
        + (".fz" if fz else "")
    )
    parsed = parse_filename(name)
    assert parsed is not None, name
    assert parsed.family == "tcspy"
    assert parsed.unit == f"7DT{unit:02d}"
    assert parsed.obs_time == when.replace(tzinfo=UTC)
    assert parsed.object == obj
    assert parsed.filter == filt
    assert parsed.binning == binning
    assert parsed.exptime == exptime
    assert parsed.sequence == seq
    assert parsed.compressed is fz
    assert parsed.imagetyp == (obj if obj in ("BIAS", "DARK", "FLAT") else None)
    if parsed.imagetyp is None:
        assert unified_name(parsed) == name.removesuffix(".fz")


@given(st.text())
def test_never_raises_on_arbitrary_text(text):
    for candidate in (text, text + ".fits", text + ".fits.fz", "7DT01_" + text + "_1x1_1.0s_0000.fits"):
        result = parse_filename(candidate)
        assert result is None or isinstance(result, ParsedName)


@given(
    st.lists(
        st.sampled_from(["7DT01", "LIGHT", "DARK", "BIAS", "FLAT", "20250101", "2023-10-11", "01-02-03",
                         "123456", "m425", "1x1", "2x2", "-9.82", "$$$$", "60.00s", "0.0s", "0001", "",
                         "x", "T00001"]),
        max_size=10,
    ),
    st.sampled_from(["_", "-"]),
    st.sampled_from([".fits", ".fits.fz"]),
)
def test_never_raises_on_near_miss_names(tokens, sep, ext):
    result = parse_filename(sep.join(tokens) + ext)
    assert result is None or isinstance(result, ParsedName)


# ---- the timestamp without strptime, the instance without the dataclass __init__


def _strptime_time(date: str, time: str, fmt: str) -> datetime | None:
    """The reading parse_filename replaced: strptime (~10 us a name)."""
    try:
        return datetime.strptime(date + time, fmt).replace(tzinfo=UTC)
    except ValueError:
        return None


_two = st.integers(0, 99).map(lambda n: f"{n:02d}")
_year = st.sampled_from(["0000", "0001", "1999", "2023", "2024", "2025", "2100", "9999"])


@given(_year, _two, _two, _two, _two, _two)
@example("2024", "02", "29", "23", "59", "59")
@example("2025", "02", "29", "00", "00", "00")
@example("2025", "12", "31", "24", "00", "00")
@example("2025", "00", "10", "10", "60", "61")
def test_timestamps_as_strptime_read_them(year, month, day, hour, minute, second):
    compact = parse_filename(f"7DT01_{year}{month}{day}_{hour}{minute}{second}_T00001_r_1x1_10.0s_0000.fits")
    hyphen = parse_filename(f"7DT01-{year}{month}{day}-{hour}{minute}{second}-M107-m400-10.0s-0000.fits")
    nina = parse_filename(f"7DT01_LIGHT_X_{year}-{month}-{day}_{hour}-{minute}-{second}_m675_2x2_120.00s_0005.fits")
    v0 = parse_filename(f"O_{year}-{month}-{day}_{hour}-{minute}-{second}_r_-9.82_60.00s_0021.fits")
    expected = _strptime_time(year + month + day, hour + minute + second, "%Y%m%d%H%M%S")
    assert expected == _strptime_time(f"{year}-{month}-{day}", f"{hour}-{minute}-{second}", "%Y-%m-%d%H-%M-%S")
    for parsed in (compact, hyphen, nina, v0):
        assert parsed is not None
        assert parsed.obs_time == expected
        if expected is not None:
            assert parsed.obs_time.tzinfo is UTC and parsed.obs_time.fold == 0


@pytest.mark.parametrize("name", sorted(CASES))
def test_parsed_name_is_a_plain_dataclass_instance(name):
    """Built without its __init__, the instance is still the one __init__ would make."""
    import copy
    import pickle
    from dataclasses import asdict, fields

    parsed = parse_filename(name)
    rebuilt = ParsedName(**{f.name: getattr(parsed, f.name) for f in fields(ParsedName)})
    assert parsed == rebuilt and hash(parsed) == hash(rebuilt) and repr(parsed) == repr(rebuilt)
    assert list(vars(parsed).items()) == list(vars(rebuilt).items()) and asdict(parsed) == asdict(rebuilt)
    assert pickle.dumps(parsed) == pickle.dumps(rebuilt) and copy.deepcopy(parsed) == parsed
    with pytest.raises(FrozenInstanceError):
        parsed.family = "x"  # type: ignore[misc]
