"""Frame classification: image type, exclusion, target kind (reference §3-4, original §1.2/§1.5)."""

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawdata.classify import (
    DEFAULT_EXCLUSION_CONFIG,
    TILE_RE,
    Classification,
    ExclusionRules,
    classify,
    is_event_name,
    is_standard_star,
    is_tile_name,
    normalise_imagetyp,
    normalise_objtype,
    tile_index,
)
from rawdata.folders import parse_folder_name
from rawdata.names import parse_filename

RULES = ExclusionRules()
TCSPY = "7DT01_20250523_005810_{obj}_m425_1x1_100.0s_0001.fits"


@dataclass
class Case:
    id: str
    filename: str
    expect: dict
    imagetyp: str | None = None
    object_name: str | None = None
    objtype: str | None = None
    folder: str | None = "2025-05-22_gain2750"
    is_too_card: bool | None = None
    kw: dict = field(default_factory=dict)


def tc(obj: str) -> str:
    return TCSPY.format(obj=obj)


SCI = dict(image_type="science", excluded_by=None)

CASES = [
    # ---------------- image type from IMAGETYP (wins over everything)
    Case("sample-tcspy-header", tc("T13785"), dict(SCI, type_source="imagetyp", target_kind="tile",
         target_name="T13785", program="RIS"), "LIGHT", "T13785", "RIS"),
    Case("imagetyp-padded", tc("T00001"), dict(image_type="science", type_source="imagetyp"), "LIGHT   ", "T00001"),
    Case("imagetyp-bias", tc("BIAS"), dict(image_type="bias", type_source="imagetyp", target_kind=None,
         target_name=None, program="calibration"), "BIAS", "BIAS", "BIAS"),
    Case("imagetyp-dark", tc("DARK"), dict(image_type="dark", type_source="imagetyp", target_kind=None,
         program="calibration"), "DARK", "DARK", "DARK"),
    Case("imagetyp-flat", tc("FLAT"), dict(image_type="flat", type_source="imagetyp", target_kind=None,
         program="calibration"), "FLAT", "FLAT", "FLAT"),
    Case("imagetyp-bias-frame", "x.fits", dict(image_type="bias", type_source="imagetyp", program="calibration"),
         "Bias Frame", None),
    Case("imagetyp-dark-frame", "x.fits", dict(image_type="dark", type_source="imagetyp"), "Dark Frame"),
    Case("imagetyp-flat-field", "x.fits", dict(image_type="flat", type_source="imagetyp"), "Flat Field"),
    Case("imagetyp-light-frame", "x.fits", dict(image_type="science", type_source="imagetyp", target_kind="named",
         target_name="M44"), "Light Frame", "M44"),
    Case("imagetyp-object", "x.fits", dict(image_type="science", type_source="imagetyp"), "OBJECT", "M44"),
    Case("imagetyp-zero", "x.fits", dict(image_type="bias", type_source="imagetyp"), "ZERO"),
    Case("imagetyp-lowercase", "x.fits", dict(image_type="dark", type_source="imagetyp"), "dark"),
    Case("imagetyp-beats-object", tc("DARK"), dict(image_type="science", type_source="imagetyp",
         target_kind="named", target_name="DARK"), "LIGHT", "DARK"),
    Case("imagetyp-beats-nina-token", "LIGHT_Feige110_2023-10-11_23-31-11_i_30.00s_0009.fits",
         dict(image_type="flat", type_source="imagetyp"), "FLAT", None, folder="2023-10-11"),
    # ---------------- IMAGETYP missing or unknown -> file name type token (NINA)
    Case("nina-v1-bias-empty-object", "BIAS__2023-10-11_20-42-45_u_0.00s_0009.fits",
         dict(image_type="bias", type_source="filename", target_kind=None, program="calibration"),
         folder="2023-10-11"),
    Case("nina-v1-light", "LIGHT_Feige110_2023-10-11_23-31-11_i_30.00s_0009.fits",
         dict(SCI, type_source="filename", target_kind="standard", target_name="Feige110", program=None),
         folder="2023-10-11"),
    Case("nina-v0-dark", "DARK_2023-10-11_20-51-11__-9.82_60.00s_0017.fits",
         dict(image_type="dark", type_source="filename", excluded_by=None), folder="2023-10-11"),
    Case("nina-v2-flatwizard", "7DT01_FLAT_FlatWizard_2024-03-11_23-09-07_m675_2x2_1.50s_0005.fits",
         dict(image_type="flat", type_source="filename", target_kind=None), folder="2024-03-11_2x2"),
    Case("nina-v2-light", "7DT01_LIGHT_COSMOS_2024-03-11_02-09-07_m675_2x2_120.00s_0005.fits",
         dict(SCI, type_source="filename", target_kind="named", target_name="COSMOS"), folder="2024-03-10_2x2"),
    Case("unknown-imagetyp-falls-back", "7DT01_DARK__2024-03-11_02-09-07_m675_2x2_120.00s_0005.fits",
         dict(image_type="dark", type_source="filename"), "WEIRD"),
    Case("nina-v0-object-is-science", "ObjectName_2023-10-12_03-01-14_r_-9.82_60.00s_0021.fits",
         dict(SCI, type_source="default", target_kind="named", target_name="ObjectName"), folder="2023-10-11"),
    # ---------------- then OBJECT
    Case("object-bias", tc("BIAS"), dict(image_type="bias", type_source="object", target_kind=None), None, "BIAS"),
    Case("object-bias-from-name", tc("BIAS"), dict(image_type="bias", type_source="object")),
    Case("object-dark-lowercase", "x.fits", dict(image_type="dark", type_source="object"), None, "dark"),
    Case("object-flatwizard", "x.fits", dict(image_type="flat", type_source="object"), None, "FlatWizard"),
    Case("hyphen-flat-object", "7DT01-20240527-061352-FLAT-m400-10.0s-0000.fits",
         dict(image_type="flat", type_source="object")),
    Case("dawn-is-science", tc("DAWN"), dict(SCI, type_source="default", target_kind="named",
         target_name="DAWN"), None, "DAWN"),
    Case("darkmatter-is-science", tc("DARKMATTER"), dict(SCI, type_source="default", target_name="DARKMATTER")),
    Case("biased-is-science", "x.fits", dict(SCI, type_source="default"), None, "BIASED"),
    Case("nothing-known", "whatever.fits", dict(SCI, type_source="default", target_kind=None, target_name=None),
         folder=None),
    # ---------------- targets
    Case("tile-from-name", tc("T00223"), dict(SCI, target_kind="tile", target_name="T00223")),
    Case("tile-extension", tc("T28519"), dict(target_kind="tile", target_name="T28519"), "LIGHT", "T28519"),
    Case("toi270-is-named", tc("TOI270"), dict(SCI, target_kind="named", target_name="TOI270"), "LIGHT", "TOI270"),
    Case("t-six-digits-named", tc("T000001"), dict(target_kind="named"), "LIGHT", "T000001"),
    Case("t-four-digits-named", tc("T1234"), dict(target_kind="named"), "LIGHT", "T1234"),
    Case("lowercase-t-named", tc("t00223"), dict(target_kind="named"), "LIGHT", "t00223"),
    Case("tile-shift", tc("T01234_shift"), dict(target_kind="tile", target_name="T01234", is_shift=True),
         "LIGHT", "T01234_shift"),
    Case("ngc-shift", tc("NGC6121_shift"), dict(SCI, target_kind="named", target_name="NGC6121", is_shift=True),
         "LIGHT", "NGC6121_shift", "IMS"),
    Case("ngc-plain", tc("NGC6121"), dict(target_kind="named", target_name="NGC6121", is_shift=False),
         "LIGHT", "NGC6121"),
    Case("bare-shift-named", tc("shift"), dict(target_kind="named", target_name="shift", is_shift=False),
         "LIGHT", "shift"),
    Case("m44", tc("M44"), dict(target_kind="named", target_name="M44"), "LIGHT", "M44", "IMS"),
    Case("cosmos", tc("COSMOS"), dict(target_kind="named"), "LIGHT", "COSMOS", "IMS"),
    Case("uds", tc("UDS"), dict(target_kind="named"), "LIGHT", "UDS", "IMS"),
    Case("grb", tc("GRB240825A"), dict(target_kind="too", target_name="GRB240825A", program="ToO"),
         "LIGHT", "GRB240825A", "ToO"),
    Case("grb-without-objtype", tc("GRB240825A"), dict(target_kind="too", program=None), "LIGHT", "GRB240825A"),
    Case("gw-superevent", tc("S250206dm"), dict(target_kind="too", target_name="S250206dm"), "LIGHT", "S250206dm"),
    Case("gw-superevent-suffix", tc("S250206dm_T1"), dict(target_kind="too"), "LIGHT", "S250206dm_T1"),
    Case("at-transient", tc("AT2025abc"), dict(target_kind="too"), "LIGHT", "AT2025abc"),
    Case("sn-transient", tc("SN2025xyz"), dict(target_kind="too"), "LIGHT", "SN2025xyz"),
    Case("sn-old", tc("SN1987A"), dict(target_kind="too"), "LIGHT", "SN1987A"),
    Case("ep-transient", tc("EP250101a"), dict(target_kind="too"), "LIGHT", "EP250101a"),
    Case("frb", tc("FRB20190520B"), dict(target_kind="too"), "LIGHT", "FRB20190520B"),
    Case("gw-event", tc("GW170817"), dict(target_kind="too"), "LIGHT", "GW170817"),
    # the original's substrings: 'AT', 'SN', 'SA' anywhere made these ToO / standards
    Case("saturn-named", tc("SATURN"), dict(target_kind="named"), "LIGHT", "SATURN"),
    Case("atlas-named", tc("ATLAS_field"), dict(target_kind="named"), "LIGHT", "ATLAS_field"),
    Case("snr-named", tc("SNR_W44"), dict(target_kind="named"), "LIGHT", "SNR_W44"),
    Case("cat-named", tc("CAT2025"), dict(target_kind="named"), "LIGHT", "CAT2025"),
    Case("transient-inside-named", tc("HostOfAT2025abc"), dict(target_kind="named"), "LIGHT", "HostOfAT2025abc"),
    Case("gravity-named", tc("GRAVITY"), dict(target_kind="named"), "LIGHT", "GRAVITY"),
    Case("objtype-too", tc("NGC4993"), dict(target_kind="too", program="ToO"), "LIGHT", "NGC4993", "ToO"),
    Case("objtype-too-lower", tc("NGC4993"), dict(target_kind="too", program="ToO"), "LIGHT", "NGC4993", "too"),
    Case("is-too-card", tc("NGC4993"), dict(target_kind="too", program="Request"), "LIGHT", "NGC4993", "Request",
         is_too_card=True),
    Case("is-too-card-false", tc("NGC4993"), dict(target_kind="named"), "LIGHT", "NGC4993", is_too_card=False),
    Case("too-folder", tc("NGC4993"), dict(target_kind="too"), "LIGHT", "NGC4993", folder="2026-05-16_gain2750_ToO"),
    Case("tile-in-too-folder", tc("T01000"), dict(target_kind="tile", program="ToO"), "LIGHT", "T01000", "ToO",
         folder="2026-05-16_gain2750_ToO"),
    Case("calibration-in-too-folder", tc("BIAS"), dict(image_type="bias", target_kind=None), "BIAS", "BIAS",
         folder="2026-05-16_gain2750_ToO"),
    Case("ltt", tc("LTT1020"), dict(target_kind="standard", target_name="LTT1020"), "LIGHT", "LTT1020"),
    Case("feige", tc("Feige110"), dict(target_kind="standard"), "LIGHT", "Feige110"),
    Case("feige-space", "x.fits", dict(target_kind="standard", target_name="Feige 34"), "LIGHT", "Feige 34"),
    Case("wd", tc("WD0123-262"), dict(target_kind="standard"), "LIGHT", "WD0123-262"),
    Case("hr", tc("HR718"), dict(target_kind="standard"), "LIGHT", "HR718"),
    Case("gd", tc("GD71"), dict(target_kind="standard"), "LIGHT", "GD71"),
    Case("bd-calspec", tc("BD+28d4211"), dict(target_kind="standard"), "LIGHT", "BD+28d4211"),
    Case("bd-plain", tc("BD+284211"), dict(target_kind="standard"), "LIGHT", "BD+284211"),
    Case("hz", tc("HZ44"), dict(target_kind="standard"), "LIGHT", "HZ44"),
    Case("eg", tc("EG131"), dict(target_kind="standard"), "LIGHT", "EG131"),
    Case("g-star", tc("G93-48"), dict(target_kind="standard"), "LIGHT", "G93-48"),
    Case("sa-field", tc("SA95"), dict(target_kind="standard"), "LIGHT", "SA95"),
    Case("pg", tc("PG1545+035"), dict(target_kind="standard"), "LIGHT", "PG1545+035"),
    Case("standard-shift", tc("LTT7987_shift"), dict(target_kind="standard", target_name="LTT7987", is_shift=True),
         "LIGHT", "LTT7987_shift"),
    Case("header-object-wins", tc("T00223"), dict(target_kind="named", target_name="M44"), "LIGHT", "M44"),
    Case("blank-object-uses-name", tc("T00223"), dict(target_kind="tile", target_name="T00223"), "LIGHT", "   "),
    Case("object-stripped", "x.fits", dict(target_name="M44"), "LIGHT", " M44  "),
    # ---------------- programs (OBJTYPE)
    Case("program-ris", tc("T00001"), dict(program="RIS"), "LIGHT", "T00001", "RIS"),
    Case("program-wts", tc("T00001"), dict(program="WTS"), "LIGHT", "T00001", "wts"),
    Case("program-ims", tc("M44"), dict(program="IMS"), "LIGHT", "M44", "IMS"),
    Case("program-raw", tc("M44"), dict(program="Commissioning"), "LIGHT", "M44", " Commissioning "),
    Case("program-target", tc("M44"), dict(program="target"), "LIGHT", "M44", "target"),
    Case("program-empty", tc("M44"), dict(program=None), "LIGHT", "M44", ""),
    # ---------------- exclusion: focus
    Case("nina-focus-prefix", "LIGHT_FOCUS7522__WD0123-262_2023-11-02_01-29-23_u_60.00s_0091.fits",
         dict(SCI, type_source="filename", target_kind="standard", target_name="WD0123-262",
              excluded_by="focus:filename-contains-focus"), folder="2023-11-01"),
    Case("nina-focus-dark", "DARK_FOCUS7446___2024-01-10_05-16-45_u_10.00s_0002.fits",
         dict(image_type="dark", excluded_by="focus:filename-contains-focus"), folder="2024-01-09"),
    Case("nina-focustest", "LIGHT_focustest_NGC1980_2023-11-02_01-29-23_r_60.00s_0001.fits",
         dict(target_name="NGC1980", excluded_by="focus:filename-contains-focustest"), folder="2023-11-01"),
    Case("focus-in-object", "x.fits", dict(excluded_by="focus:object-contains-focus"), "LIGHT", "FOCUS7522"),
    Case("focustest-in-object", "x.fits", dict(excluded_by="focus:object-contains-focustest"), "LIGHT", "focustest"),
    Case("autofocus-object", "x.fits", dict(excluded_by="focus:object-contains-autofocus"), "LIGHT", "AutoFocus_run"),
    Case("defocus-test", tc("Defocus_test_WASP-178b"), dict(target_kind="named",
         target_name="Defocus_test_WASP-178b", program="Test", excluded_by="focus:object-contains-defocus"),
         "LIGHT", "Defocus_test_WASP-178b", "Test"),
    Case("af-prefix", "af_0001.fits", dict(excluded_by="focus:filename-prefix-af_"), "LIGHT", "M44"),
    Case("af-object-prefix", "x.fits", dict(excluded_by="focus:object-prefix-af_"), "LIGHT", "AF_M44"),
    Case("af-inside-not-excluded", tc("GRAF_1"), dict(excluded_by=None, target_kind="named"), "LIGHT", "GRAF_1"),
    # ---------------- exclusion: test
    Case("filtercheck", tc("filtercheck"), dict(SCI, excluded_by="test:objtype-equals-test", program="test"),
         "LIGHT", "filtercheck", "test", folder="2025-04-03_gain0"),
    Case("filtercheck-without-objtype", tc("filtercheck"), dict(excluded_by="test:object-equals-filtercheck"),
         "LIGHT", "filtercheck"),
    Case("objtype-test-capital", tc("M44"), dict(excluded_by="test:objtype-equals-test", program="Test"),
         "LIGHT", "M44", "Test"),
    Case("object-test", tc("TEST_M44"), dict(excluded_by="test:object-contains-test"), "LIGHT", "TEST_M44"),
    Case("test-folder", tc("T00001"), dict(SCI, target_kind="tile", excluded_by="test:folder-is-test"),
         "LIGHT", "T00001", "RIS", folder="2024-02-03_TEST"),
    Case("month-00-folder", tc("BIAS"), dict(image_type="bias", excluded_by="test:folder-is-test"),
         "BIAS", "BIAS", folder="2023-00-00"),
    Case("twilight-flat-kept", tc("FLAT"), dict(image_type="flat", excluded_by=None), "FLAT", "FLAT"),
]


def _run(case: Case, rules: ExclusionRules = RULES) -> Classification:
    parsed = parse_filename(case.filename)
    folder = parse_folder_name(case.folder) if case.folder else None
    return classify(
        imagetyp=case.imagetyp,
        object_name=case.object_name,
        objtype=case.objtype,
        filename=case.filename,
        parsed=parsed,
        folder=folder,
        is_too_card=case.is_too_card,
        rules=rules,
    )


def test_table_is_large_and_ids_unique():
    assert len(CASES) >= 40
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_classification_table(case):
    result = _run(case)
    for attr, expected in case.expect.items():
        assert getattr(result, attr) == expected, f"{case.id}: {attr}={getattr(result, attr)!r}"
    assert result.image_type in {"bias", "dark", "flat", "science"}
    assert result.type_source in {"imagetyp", "filename", "object", "default"}
    assert result.target_kind in {"tile", "named", "standard", "too", None}
    assert result.excluded == (result.excluded_by is not None)
    if result.image_type != "science":
        assert result.target_kind is None and result.target_name is None and not result.is_shift
    if result.target_kind == "tile":
        assert TILE_RE.match(result.target_name)


# ---------------- helpers


@pytest.mark.parametrize(
    ("name", "index"),
    [("T00000", 0), ("T00223", 223), ("T25471", 25471), ("T28519", 28519), ("TOI270", None), ("T0022", None),
     ("T000223", None), ("t00223", None), ("T00223_shift", None), ("T00223\n", None), ("", None), (None, None),
     ("T\u0660\u0660\u0660\u0660\u0661", None)],
)
def test_tiles(name, index):
    assert tile_index(name) == index
    assert is_tile_name(name) == (index is not None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("LIGHT", "science"), ("LIGHT   ", "science"), ("light", "science"), ("Light Frame", "science"),
     ("OBJECT", "science"), ("BIAS", "bias"), ("Bias Frame", "bias"), ("ZERO", "bias"), ("DARK", "dark"),
     ("Dark  Frame", "dark"), ("FLAT", "flat"), ("Flat Field", "flat"), ("", None), (None, None),
     ("FOCUS", None), ("LIGHTS", None)],
)
def test_normalise_imagetyp(value, expected):
    assert normalise_imagetyp(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("RIS", "RIS"), ("ris", "RIS"), ("IMS", "IMS"), ("WTS", "WTS"), ("ToO", "ToO"), ("TOO", "ToO"),
     ("BIAS", "calibration"), ("DARK", "calibration"), ("FLAT", "calibration"), ("target", "target"),
     ("Request", "Request"), ("", None), ("  ", None), (None, None)],
)
def test_normalise_objtype(value, expected):
    assert normalise_objtype(value) == expected


@pytest.mark.parametrize("name", ["S250206dm", "S190425z", "GRB240825A", "GRB 240825A", "AT2025abc", "AT 2025abc",
                                  "SN2025xyz", "EP250101a", "FRB20190520B", "FRB190520", "GW170817",
                                  "ZTF21aaaaaaa", "IceCube-240101A", "MS250101abc"])
def test_event_names(name):
    assert is_event_name(name)


@pytest.mark.parametrize("name", ["SATURN", "SA95", "AT", "SN", "ATLAS", "S25020dm", "S250206DM", "s250206dm",
                                  "xGRB240825A", "GRB240825A\n", "SN2025", "T00223", "NGC4993", "ATxxxx"])
def test_not_event_names(name):
    assert not is_event_name(name)


@pytest.mark.parametrize("name", ["LTT1020", "LTT 1020", "Feige110", "FEIGE34", "WD0123-262", "WD1327-083",
                                  "HR718", "GD71", "BD+284211", "BD-08", "HZ44", "EG131", "G93-48", "G191B2B",
                                  "SA95", "SA104", "PG1545+035", "ltt7987"])
def test_standard_stars(name):
    assert is_standard_star(name)


@pytest.mark.parametrize("name", ["SATURN", "HRD", "GDX", "WD", "WD0123", "LTT", "M44", "NGC6121", "MyLTT1020",
                                  "Feige", "T00223", "PGC1234"])
def test_not_standard_stars(name):
    assert not is_standard_star(name)


# ---------------- rules as data


def test_default_rules_in_order():
    ids = [r.id for r in RULES.rules]
    assert ids.index("focus:object-contains-focus") < ids.index("test:object-contains-test")
    assert "focus:object-contains-defocus" in ids
    assert "test:folder-is-test" in ids
    assert RULES.categories == ("focus", "test")
    assert ExclusionRules.from_config(DEFAULT_EXCLUSION_CONFIG) == RULES


def test_from_config_substring_lists():
    rules = ExclusionRules.from_config({"calib": ["CALIB", "lamp"], "focus": ["FOCUS"]}, extend_defaults=False)
    assert [r.id for r in rules.rules] == [
        "calib:object-contains-calib", "calib:object-contains-lamp",
        "calib:filename-contains-calib", "calib:filename-contains-lamp",
        "focus:object-contains-focus", "focus:filename-contains-focus",
    ]
    result = classify(imagetyp="FLAT", object_name="lamp_flat", objtype=None, filename="x.fits", parsed=None,
                      folder=None, is_too_card=None, rules=rules)
    assert result.excluded_by == "calib:object-contains-lamp"
    assert result.image_type == "flat"


def test_from_config_detailed_and_empty():
    rules = ExclusionRules.from_config(
        {"test": {"objtype_equals": ["Commissioning"], "folder_is_test": False}}, extend_defaults=False
    )
    assert [r.id for r in rules.rules] == ["test:objtype-equals-commissioning"]
    none = ExclusionRules.from_config({}, extend_defaults=False)
    case = next(c for c in CASES if c.id == "test-folder")
    assert _run(case, none).excluded_by is None


def test_from_config_extends_defaults():
    # the settings pass extra substrings per category; empty settings must keep the defaults
    assert ExclusionRules.from_config({}) == RULES
    assert ExclusionRules.from_config({"focus": [], "test": []}) == RULES
    rules = ExclusionRules.from_config({"focus": ["FOCUS", "fcs_"], "test": ["lamp"], "calib": ["CALIB"]})
    ids = [r.id for r in rules.rules]
    defaults = [r.id for r in RULES.rules]
    n_focus = defaults.index("test:objtype-equals-test")
    assert ids[: n_focus + 2] == [
        *defaults[:n_focus],
        "focus:object-contains-fcs_", "focus:filename-contains-fcs_",
    ]
    assert ids.count("focus:object-contains-focus") == 1
    assert ids[-4:] == [
        "test:object-contains-lamp", "test:filename-contains-lamp",
        "calib:object-contains-calib", "calib:filename-contains-calib",
    ]
    assert rules.categories == ("focus", "test", "calib")
    lamp = classify(imagetyp="FLAT", object_name="lamp", objtype=None, filename="x.fits", parsed=None,
                    folder=None, is_too_card=None, rules=rules)
    assert lamp.excluded_by == "test:object-contains-lamp"


@pytest.mark.parametrize(
    "config",
    [{"focus": "FOCUS"}, {"focus": {"objct_contains": ["x"]}}, {"focus": [""]}, {"focus": [1]},
     {"focus": {"object_contains": "FOCUS"}}, {"focus": 5}],
)
def test_from_config_rejects_bad_config(config):
    with pytest.raises(ValueError):
        ExclusionRules.from_config(config)


def test_without_category():
    only_test = RULES.without("focus")
    assert only_test.categories == ("test",)
    case = next(c for c in CASES if c.id == "defocus-test")
    # with focus rules off, the same frame is still caught by the test rules
    assert _run(case, only_test).excluded_by == "test:objtype-equals-test"
    assert _run(case, RULES.without("focus", "test")).excluded_by is None


def test_excluded_frames_are_still_classified():
    case = next(c for c in CASES if c.id == "nina-focus-prefix")
    result = _run(case)
    assert result.excluded and result.image_type == "science" and result.target_name == "WD0123-262"


@given(
    imagetyp=st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["LIGHT", "BIAS", "DARK", "FLAT"])),
    object_name=st.one_of(st.none(), st.text(max_size=20)),
    objtype=st.one_of(st.none(), st.text(max_size=10)),
    filename=st.text(max_size=60),
    is_too_card=st.one_of(st.none(), st.booleans()),
)
def test_classify_total(imagetyp, object_name, objtype, filename, is_too_card):
    result = classify(imagetyp=imagetyp, object_name=object_name, objtype=objtype, filename=filename,
                      parsed=parse_filename(filename), folder=None, is_too_card=is_too_card, rules=RULES)
    assert result.image_type in {"bias", "dark", "flat", "science"}
    if result.target_kind == "tile":
        assert is_tile_name(result.target_name)
