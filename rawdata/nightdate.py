"""UTC of exposure start -> night date (the local evening date of the observing night).

The 7DT pipeline labels a night by ``UTC - 15 h`` so that a whole Chilean night (evening to
morning, UTC-3/-4) lands on one label; GW Portal keys nights the same way so both systems agree.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

__all__ = ["NIGHT_OFFSET", "night_date"]

NIGHT_OFFSET = timedelta(hours=15)


def night_date(utc: datetime) -> date:
    """Return the night date of an exposure that started at ``utc``.

    Aware datetimes are converted to UTC first; naive ones are taken to be UTC already
    (DATE-OBS and the file-name timestamps are UTC).
    """
    if utc.tzinfo is not None and utc.utcoffset() is not None:
        utc = utc.astimezone(timezone.utc).replace(tzinfo=None)
    return (utc - NIGHT_OFFSET).date()
