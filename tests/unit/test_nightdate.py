"""Night date = UTC of exposure start minus 15 h (the pipeline's `nightdate`)."""

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rawdata.nightdate import NIGHT_OFFSET, night_date

UTC = timezone.utc


def test_offset_is_fifteen_hours():
    assert NIGHT_OFFSET == timedelta(hours=15)


@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        # the sample TCSpy header: DATE-OBS 2025-05-23T00:58:10, DATE-LOC 2025-05-22 20:58:10
        (datetime(2025, 5, 23, 0, 58, 10, tzinfo=UTC), date(2025, 5, 22)),
        # 7DT11_20250102_050704_T00223_... (reference file name)
        (datetime(2025, 1, 2, 5, 7, 4, tzinfo=UTC), date(2025, 1, 1)),
        # an evening frame: UTC date == night date
        (datetime(2025, 7, 1, 23, 30, tzinfo=UTC), date(2025, 7, 1)),
        # the boundary: 15:00 UTC (11:00/12:00 local) starts a new night
        (datetime(2025, 7, 1, 14, 59, 59, tzinfo=UTC), date(2025, 6, 30)),
        (datetime(2025, 7, 1, 15, 0, 0, tzinfo=UTC), date(2025, 7, 1)),
        # morning twilight flats belong to the night that is ending
        (datetime(2025, 7, 2, 10, 30, tzinfo=UTC), date(2025, 7, 1)),
        # year boundary
        (datetime(2025, 1, 1, 3, 0, tzinfo=UTC), date(2024, 12, 31)),
    ],
)
def test_reference_facts(utc, expected):
    assert night_date(utc) == expected


def test_naive_datetimes_are_utc():
    assert night_date(datetime(2025, 5, 23, 0, 58, 10)) == date(2025, 5, 22)
    assert night_date(datetime(2025, 7, 1, 15, 0)) == date(2025, 7, 1)
    assert night_date(datetime(2025, 7, 1, 14, 59, 59, 999999)) == date(2025, 6, 30)


def test_aware_datetimes_are_converted_to_utc():
    santiago = ZoneInfo("America/Santiago")
    # DATE-LOC of the sample header (Chile, UTC-4 in May)
    local = datetime(2025, 5, 22, 20, 58, 10, tzinfo=santiago)
    assert night_date(local) == date(2025, 5, 22)
    kst = timezone(timedelta(hours=9))
    assert night_date(datetime(2025, 5, 23, 9, 58, 10, tzinfo=kst)) == date(2025, 5, 22)


@given(st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2100, 1, 1)))
def test_naive_and_aware_agree_and_stay_within_a_day(dt):
    nd = night_date(dt)
    assert nd == night_date(dt.replace(tzinfo=UTC))
    assert nd in (dt.date(), dt.date() - timedelta(days=1))
    assert (nd == dt.date()) == (dt.hour >= 15)


@given(st.datetimes(min_value=datetime(2023, 1, 1), max_value=datetime(2030, 1, 1)))
def test_a_chilean_night_gets_one_label(local_evening):
    """Any local time from 12:00 to 10:59 next morning maps to the local date of the evening."""
    santiago = ZoneInfo("America/Santiago")
    start = local_evening.replace(hour=12, minute=0, second=0, microsecond=0, tzinfo=santiago)
    for hours in (0, 6, 9, 12, 18, 22):
        moment = start + timedelta(hours=hours, minutes=59)
        assert night_date(moment) == start.date()
