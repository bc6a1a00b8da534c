"""Rendering for ``rawdata.sample``: sky maths, FITS cards, headers and pixels.

Cards are formatted here rather than with ``astropy.io.fits.Card`` because astropy's
per-card validation made the sample generator ~20x slower; the layout below is the
fixed format astropy itself writes (value right-justified to column 30, strings padded
to 8 characters, comments cut at column 80 as astropy did for TCSpy's long comments).
The sample tests read every file back with astropy and run ``fitsverify``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any

import numpy as np

from rawdata import tiles

log = logging.getLogger(__name__)

# Sites: TCSpy observer.config, and what NINA wrote.
TCSPY_SITE = (-30.4704, -70.7804, 1580.0)
NINA_SITE = (-30.4864722222222, -70.8385555555555, 1600.0)
_EGAIN = {2750: 0.2561904788017273, 0: 0.7806640863418579}
BLOCK = 2880


def _santiago() -> tzinfo:
    try:
        from zoneinfo import ZoneInfo

        return ZoneInfo("America/Santiago")
    except Exception:  # pragma: no cover - no tz database on this machine
        log.warning("no tz database: using UTC-4 for America/Santiago")
        return timezone(timedelta(hours=-4))


TZ = _santiago()


# ---------------------------------------------------------------------------------------
# Sky helpers (low precision, closed form)
# ---------------------------------------------------------------------------------------


def jd(t: datetime) -> float:
    return 2440587.5 + t.timestamp() / 86400.0


def lst_deg(t: datetime, lon: float) -> float:
    d = jd(t) - 2451545.0
    return (280.46061837 + 360.98564736629 * d + lon) % 360.0


def altaz(ra: float, dec: float, t: datetime, lat: float, lon: float) -> tuple[float, float, float]:
    """(alt, az, hour angle) in degrees; az from North through East."""
    ha = (lst_deg(t, lon) - ra) % 360.0
    h, d, p = map(math.radians, (ha, dec, lat))
    alt = math.asin(math.sin(p) * math.sin(d) + math.cos(p) * math.cos(d) * math.cos(h))
    az = math.atan2(-math.sin(h) * math.cos(d), math.sin(d) * math.cos(p) - math.cos(d) * math.sin(p) * math.cos(h))
    return math.degrees(alt), math.degrees(az) % 360.0, ha


def radec(alt: float, az: float, t: datetime, lat: float, lon: float) -> tuple[float, float]:
    """Inverse of ``altaz`` (the same rotation)."""
    a, z, p = map(math.radians, (alt, az, lat))
    dec = math.asin(math.sin(p) * math.sin(a) + math.cos(p) * math.cos(a) * math.cos(z))
    ha = math.atan2(-math.sin(z) * math.cos(a), math.sin(a) * math.cos(p) - math.cos(a) * math.sin(p) * math.cos(z))
    return (lst_deg(t, lon) - math.degrees(ha)) % 360.0, math.degrees(dec)


def moon(t: datetime) -> tuple[float, float, float]:
    """Moon (ra, dec, illuminated fraction), good to about a degree."""
    d = jd(t) - 2451545.0
    rad = math.radians
    lam = 218.316 + 13.176396 * d + 6.289 * math.sin(rad(134.963 + 13.064993 * d))
    beta = 5.128 * math.sin(rad(93.272 + 13.229350 * d))
    g = rad(357.529 + 0.98560028 * d)
    lam_sun = 280.459 + 0.98564736 * d + 1.915 * math.sin(g) + 0.020 * math.sin(2 * g)
    eps = rad(23.439)
    lr, br = rad(lam), rad(beta)
    ra = math.atan2(math.sin(lr) * math.cos(eps) - math.tan(br) * math.sin(eps), math.cos(lr))
    dec = math.asin(math.sin(br) * math.cos(eps) + math.cos(br) * math.sin(eps) * math.sin(lr))
    elong = math.acos(math.cos(br) * math.cos(rad(lam - lam_sun)))
    return math.degrees(ra) % 360.0, math.degrees(dec), (1 - math.cos(elong)) / 2


def airmass_pickering(alt: float) -> float:
    return 1.0 / math.sin(math.radians(alt + 244.0 / (165.0 + 47.0 * max(alt, 0.1) ** 1.1)))


def airmass_gueymard(alt: float) -> float:
    z = 90.0 - alt
    return 1.0 / (math.sin(math.radians(alt)) + 0.00176759 * z * (94.37515 - z) ** -1.21563)


def sexa(value: float, sep: str, precision: int, sign: bool) -> str:
    """``hh:mm:ss.ss`` style string; ``sign`` forces ``+`` on positives (NINA)."""
    neg = value < 0
    scale = 10**precision
    total = round(abs(value) * 3600 * scale)
    whole, frac = divmod(total, scale)
    d, rem = divmod(whole, 3600)
    m, s = divmod(rem, 60)
    sec = f"{s:02d}" + (f".{frac:0{precision}d}" if precision else "")
    prefix = "-" if neg else ("+" if sign else "")
    return f"{prefix}{d:02d}{sep}{m:02d}{sep}{sec}"


def iso_ms(t: datetime, sep: str = "T") -> str:
    return t.strftime(f"%Y-%m-%d{sep}%H:%M:%S") + f".{t.microsecond // 1000:03d}"


def local_night_time(night: date, hh: int, mm: int, ss: float = 0.0) -> datetime:
    """UTC instant of local Chile wall time on the night starting on ``night``."""
    day = night if hh >= 12 else night + timedelta(days=1)
    loc = datetime(day.year, day.month, day.day, hh, mm, tzinfo=TZ) + timedelta(seconds=ss)
    return loc.astimezone(timezone.utc)


def whole_ms(t: datetime) -> datetime:
    return t.replace(microsecond=(t.microsecond // 1000) * 1000)


@dataclass
class FrameSpec:
    """One planned file: everything needed to render its header, pixels and name."""

    unit: str
    folder: str
    night: date
    name: str
    software: str
    family: str
    image_type: str
    imagetyp: str
    object: str | None
    objtype: str | None
    filter: str
    exptime: float
    t: datetime  # exposure start, UTC, whole ms
    gain: int = 2750
    target: tuple[float, float] | None = None  # target coordinates
    pointing: tuple[float, float] | None = None  # telescope; None = from alt/az below
    altaz: tuple[float, float] | None = None  # fixed mount alt/az (park, flats)
    tile: str | None = None
    is_too: bool = False
    excluded: str | None = None
    off_pointing: bool = False
    weather: bool = True
    obsmode: str | None = None
    specmode: str | None = None
    note: str | None = None
    focus: float = 0.0
    af_time: datetime | None = None

    @property
    def relpath(self) -> str:
        return f"{self.unit}/{self.folder}/{self.name}"


# ---------------------------------------------------------------------------------------
# Cards and bytes
# ---------------------------------------------------------------------------------------


def _fmt_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, str):
        quoted = "'" + f"{value.replace(chr(39), chr(39) * 2):8}" + "'"
        return f"{quoted:20}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):>20}"
    text = str(float(value)).replace("e", "E")
    if len(text) > 20:
        cut = text.find("E")
        text = text[:20] if cut < 0 else text[: 20 - (len(text) - cut)] + text[cut:]
    return f"{text:>20}"


def card(key: str, value: Any = None, comment: str = "") -> str:
    """One 80-character card image, the fixed format astropy writes."""
    if key in ("HISTORY", "COMMENT"):
        return f"{key:8}{value}"[:80].ljust(80)
    text = f"{key:8}= {_fmt_value(value)}"
    if comment:
        text = f"{text} / {comment}"
    return text[:80].ljust(80)


def header_bytes(cards: list[str]) -> bytes:
    text = "".join(cards) + "END".ljust(80)
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")


def head_text(cards: list[str]) -> str:
    """What TCSpy's ``header.tostring(sep='\\n')`` gives for the saved header (the .head file)."""
    text = "\n".join(cards) + "\n" + "END".ljust(80)
    return text + " " * (-len(text) % BLOCK)


def data_bytes(data: np.ndarray) -> bytes:
    """uint16 pixels as BITPIX=16 with BZERO=32768, padded to a whole block."""
    raw = np.bitwise_xor(data, np.uint16(0x8000)).astype(">u2").tobytes()
    return raw + b"\0" * (-len(raw) % BLOCK)


class _Cards:
    """Card list builder; ``strict`` drops null-valued cards (fitsverify warns on them)."""

    def __init__(self, strict: bool) -> None:
        self.cards: list[str] = []
        self.strict = strict

    def add(self, key: str, value: Any, comment: str = "") -> None:
        if value is None and self.strict:
            return
        self.cards.append(card(key, value, comment))


def weather(t: datetime, night: date, seed: int) -> dict[str, float]:
    """Site weather as a smooth function of time (one station serves all units)."""
    r = np.random.default_rng([seed, 2, night.toordinal()])
    t0 = local_night_time(night, 18, 0)
    h = (t - t0).total_seconds() / 3600.0
    ph = r.uniform(0, 2 * math.pi, 4)
    temp = float(r.uniform(9, 16)) - 0.45 * h + 0.4 * math.sin(h + ph[0])
    hum = float(np.clip(r.uniform(18, 40) + 1.5 * h + 4 * math.sin(0.7 * h + ph[1]), 5, 95))
    a, b = 17.62, 243.12
    gam = math.log(hum / 100) + a * temp / (b + temp)
    wind = max(0.0, float(r.uniform(0.5, 5)) + 1.2 * math.sin(0.9 * h + ph[2]))
    press = float(r.uniform(1016, 1024)) + 0.2 * math.sin(h)
    wind_dir = (float(r.uniform(0, 360)) + 20 * math.sin(h + ph[3])) % 360
    return {
        "temp": round(temp, 1), "hum": round(hum, 1), "press": round(press, 1), "dew": round(b * gam / (a - gam), 1),
        "wind": round(wind, 1), "dir": round(wind_dir, 1), "gust": round(wind + 0.1 + abs(0.6 * math.sin(3 * h)), 1),
        "skytemp": round(-22.0 + 3 * math.sin(h + ph[0]), 1),
        "fwhm": round(1.05 + float(r.uniform(0, 0.6)) + 0.25 * (1 + math.sin(1.3 * h + ph[2])), 2),
        "cloud": 0.0,
    }  # fmt: skip


def _target_id(seed: int, name: str | None) -> str:
    """Stable OBJCTID per target, as TCSpy's target database row id."""
    return uuid.UUID(bytes=hashlib.sha256(f"{seed}:{name}".encode()).digest()[:16], version=4).hex


def pointing(fr: FrameSpec, lat: float, lon: float) -> tuple[float, float, float, float]:
    """(ra, dec, alt, az) of the telescope at exposure start."""
    if fr.altaz is not None:
        ra, dec = radec(fr.altaz[0], fr.altaz[1], fr.t, lat, lon)
        return ra, dec, fr.altaz[0], fr.altaz[1]
    assert fr.pointing is not None
    ra, dec = fr.pointing
    alt, az, _ = altaz(ra, dec, fr.t, lat, lon)
    return ra, dec, alt, az


def tcspy_cards(
    fr: FrameSpec, shape: tuple[int, int], rng: np.random.Generator, seed: int, strict: bool
) -> list[str]:
    """TCSpy keyword set in TCSpy's order (mainImage: telescope, camera, focus, filter,
    image, target, config, observer, weather); ``strict`` drops null cards."""
    lat, lon, elev = TCSPY_SITE
    c = _Cards(strict)
    c.add("SIMPLE", True, "conforms to FITS standard")
    c.add("BITPIX", 16, "array data type")
    c.add("NAXIS", 2, "number of array dimensions")
    c.add("NAXIS1", shape[1])
    c.add("NAXIS2", shape[0])
    ra, dec, alt, az = pointing(fr, lat, lon)
    c.add("ALTITUDE", round(alt, 6), "[deg] Altitude of the telescope pointing")
    c.add("AZIMUTH", round(az, 6), "[deg] Azimuth of the telescope pointing")
    c.add("CENTALT", round(alt, 6), "[deg] Altitude of the telescope pointing")
    c.add("CENTAZ", round(az, 6), "[deg] Azimuth of the telescope pointing")
    c.add("RA", round(ra, 6), "[deg] Right ascension of the telescope pointing")
    c.add("DEC", round(dec, 6), "[deg] Declination of the telescope pointing")
    c.add("AIRMASS", airmass_pickering(alt), "Airmass at frame center (Pickering 2002) ")
    c.add("INSTRUME", "Moravian USB Camera 1 (64 bit)", "Detector instrument name")
    c.add("EGAIN", _EGAIN[fr.gain], "[e-/ADU] Eletrconic gain")
    c.add("CCD-TEMP", round(-10.0 + float(rng.normal(0, 0.05)), 1), "[deg C] CCD temperature")
    c.add("SET-TEMP", -10.0, "[deg C] CCD temperature setpoint")
    c.add("COLPOWER", round(float(rng.uniform(55, 80)), 1), "[%] CCD cooler power")
    c.add("GAIN", fr.gain, "Gain from the camera configuration")
    c.add("FOCUSPOS", fr.focus + float(rng.normal(0, 0.3)), "Position of the focuser")
    af = fr.af_time or fr.t
    c.add("AFTIME", iso_ms(af), "[UTC] UTC of the latest succeeded AF run")
    c.add("AFVALUE", round(fr.focus, 1), "[um] Autofocus position of the latest succeeded AF run")
    c.add("AFERROR", round(float(rng.uniform(8, 30)), 2), "[um] Autofocus error of the latest succeeded run")
    c.add("FILTER", fr.filter, "Name of the filter")
    c.add("IMAGEID", uuid.UUID(bytes=rng.bytes(16), version=4).hex, "Unique ID of the image")
    c.add("IMAGETYP", fr.imagetyp, "Type of the image")
    c.add("EXPTIME", fr.exptime, "[seconds] Duration of exposure time")
    c.add("EXPOSURE", fr.exptime, "[seconds] Duration of exposure time")
    c.add("DATE-OBS", iso_ms(fr.t), "[UTC] Date of the observation")
    c.add("DATE-LOC", iso_ms(fr.t.astimezone(TZ), "T" if strict else " "), "[LTC] Date of the observation")
    jdate = jd(fr.t)
    c.add("JD", jdate, "[JD] Julian date")
    c.add("MJD", jdate - 2400000.5, "[MJD] Modified Julian date")
    c.add("XBINNING", 1, "Binning level along the X-axis")
    c.add("YBINNING", 1, "Binning level along the Y-axis")
    moon_ra, moon_dec, phase = moon(fr.t)
    tgt = fr.target
    c.add("OBJECT", fr.object, "Name of the target")
    c.add("OBJTYPE", fr.objtype, "Type of the target")
    if tgt is not None:
        tra, tdec = round(tgt[0], 3), round(tgt[1], 4)
        talt, taz, tha = altaz(tgt[0], tgt[1], fr.t, lat, lon)
        vals: list[Any] = [sexa(tra / 15.0, ":", 2, False), sexa(tdec, ":", 2, False), tra, tdec, talt, taz,
                           sexa(tha / 15.0, " ", 8, False),
                           _target_id(seed, fr.object),
                           round(tiles.angular_distance_deg(tgt[0], tgt[1], moon_ra, moon_dec), 2), fr.obsmode,
                           fr.specmode, 14]
    else:
        vals = [None] * 12
    notes = ["[h m s] Right ascension of the target in hms format", "[d m s] Declination of the target in dms format",
             "[deg] Right ascension of the target in deg", "[deg] Declination of the target in deg",
             "[deg] Altitude of the target", "[deg] Azimuth of the target", "[h m s] Hourangle of the target",
             "ID of the target", "[deg] Separation angle between the target and the moon", "Observation mode",
             'Specmode (when OBSMODE == "SPEC")', "Number of telescopes involved in the observation"]
    for key, val, note in zip(("OBJCTRA", "OBJCTDEC", "OBJCTRA_", "OBJCTDE_", "OBJCTALT", "OBJCTAZ", "OBJCTHA",
                               "OBJCTID", "MOONSEP", "OBSMODE", "SPECMODE", "NTELSCOP"), vals, notes):
        c.add(key, val, note)
    c.add("NOTE", fr.note or "None", "Note of the target")
    c.add("IS_TOO", str(fr.is_too), "Is the target a ToO?")
    unum = int(fr.unit[3:])
    host = f"10.0.106.{5 + unum}"
    c.add("MNT_IP", host, "Hosting IP for TCSpy mount device")
    c.add("MNT_PRT", "8220", "Port number of TCSpy mount device")
    c.add("MNT_NUM", 0, "Device number of TCSpy mount device")
    c.add("FOCALLEN", 1537.0, "[mm] Focal length of the telescope")
    c.add("FOCALRAT", 3, "[mm] Focal length of the telescope")
    c.add("APTDIA", 0.5, "[m] Diameter of the telescope")
    c.add("APTAREA", 1e4 * math.pi * 0.25**2, "[mm^2] Aperture area of the telescope")
    c.add("TELESCOP", fr.unit, "Name of the telescope")
    for pre, port, what in (("CAM", 11111, "camera"),):
        c.add(f"{pre}_IP", host, f"Hosting IP for ALPACA {what} device")
        c.add(f"{pre}_PRT", port, f"Port number of ALPACA {what} device")
        c.add(f"{pre}_NUM", 0, f"Device number of ALPACA {what} device")
    c.add("XPIXSZ", 3.76, "[um] Pixel width")
    c.add("YPIXSZ", 3.76, "[um] Pixel height")
    for pre, ip, port, what in (("FILT", host, 11111, "filterwheel"), ("FOC", host, "8220", "focuser"),
                                ("WTER", "10.0.11.3", 5575, "weather"), ("SAFE", "10.0.11.3", 5565, "weather")):
        c.add(f"{pre}_IP", ip, f"Hosting IP for ALPACA {what} device")
        c.add(f"{pre}_PRT", port, f"Port number of ALPACA {what} device")
        c.add(f"{pre}_NUM", 0, f"Device number of ALPACA {what} device")
    c.add("LOGPATH", f"/home/kds/.tcspy/sync/log/{fr.unit}", "Log file path")
    c.add("OBSERVER", "Hyeonho Choi", "Name of the observer")
    c.add("SITELAT", lat, "[deg] Latitude of the observatory")
    c.add("SITELONG", lon, "[deg] Longitude of the observatory")
    c.add("SITEELEV", elev, "[m] Elevation of the observatory")
    c.add("MOONPHAS", phase, "[0-1] Illuminated fraction of the moon (0=new, 1=full)")
    w = weather(fr.t, fr.night, seed) if fr.weather else None
    end = fr.t + timedelta(seconds=fr.exptime + 3)
    upd = end.replace(second=0, microsecond=0) + timedelta(seconds=19.346)
    upd = upd - timedelta(minutes=1) if upd > end else upd
    sky = round(21.75 - 2.2 * phase + float(rng.normal(0, 0.03)), 2)
    wvals = (None,) * 13 if w is None else (
        iso_ms(upd), w["temp"], w["hum"], w["press"], w["dew"], w["wind"], w["dir"], w["gust"], sky, w["skytemp"],
        w["fwhm"], w["cloud"], 0)
    for key, val, note in zip(
        ("DATE-WEA", "AMBTEMP", "HUMIDITY", "PRESSURE", "DEWPOINT", "WINDSPED", "WINDDIR", "WINDGUST", "SKYBRGHT",
         "SKYTEMP", "SKYFWHM", "CLUDFRAC", "RAINRATE"), wvals,
        ("[UTC] UTC of the latest weather update", "[deg C] Ambient temperature at the observatory",
         "[%] Atmospheric relative humidity at the observatory",
         "[hPa] Atmospheric pressure at the observatory altitude",
         "[deg C] Atmospheric dew point temperature at the observatory", "[m/s] Wind speed at the observatory",
         "[deg] Wind direction: 0=N, 90 = E, 180=S, 270=W",
         "[m/s] Peak 3 second wind gust (m/s) at the observatory over the last 2 minutes",
         "[mag/arcsec^2] Sky quality at the observatory", "[deg C] Sky temperature at the observatory",
         "[arcsec] Seeing at the observatory", "[%] Amount of sky obscured by cloud",
         "[mm/hr] Rain rate at the observatory")):
        c.add(key, val, note)
    c.add("BSCALE", 1)
    c.add("BZERO", 32768)
    return c.cards


def nina_cards(fr: FrameSpec, shape: tuple[int, int], rng: np.random.Generator, seed: int) -> list[str]:
    """NINA 2.2 keyword set, in the order of the gwportal NINA sample header."""
    lat, lon, elev = NINA_SITE
    c = _Cards(strict=True)
    c.add("SIMPLE", True, "conforms to FITS standard")
    c.add("BITPIX", 16, "array data type")
    c.add("NAXIS", 2, "number of array dimensions")
    c.add("NAXIS1", shape[1])
    c.add("NAXIS2", shape[0])
    c.add("IMAGETYP", fr.imagetyp, "Type of exposure")
    c.add("EXPOSURE", fr.exptime, "[s] Exposure duration")
    c.add("EXPTIME", fr.exptime, "[s] Exposure duration")
    c.add("DATE-LOC", iso_ms(fr.t.astimezone(TZ)), "Time of observation (local)")
    c.add("DATE-OBS", iso_ms(fr.t), "Time of observation (UTC)")
    c.add("XBINNING", 1, "X axis binning factor")
    c.add("YBINNING", 1, "Y axis binning factor")
    c.add("GAIN", fr.gain, "Sensor gain")
    c.add("EGAIN", 0.256190478801727, "[e-/ADU] Electrons per A/D unit")
    c.add("XPIXSZ", 3.76, "[um] Pixel X axis size")
    c.add("YPIXSZ", 3.76, "[um] Pixel Y axis size")
    c.add("INSTRUME", "Moravian USB Camera ", "Imaging instrument name")
    c.add("SET-TEMP", -10.0, "[degC] CCD temperature setpoint")
    c.add("CCD-TEMP", -10.0 + float(rng.normal(0, 0.03)), "[degC] CCD temperature")
    c.add("TELESCOP", fr.unit, "Name of telescope")
    c.add("FOCALLEN", 1537.0, "[mm] Focal length")
    c.add("FOCRATIO", 3.0, "Focal ratio")
    ra, dec, alt, az = pointing(fr, lat, lon)
    c.add("RA", ra, "[deg] RA of telescope")
    c.add("DEC", dec, "[deg] Declination of telescope")
    c.add("CENTALT", alt, "[deg] Altitude of telescope")
    c.add("CENTAZ", az, "[deg] Azimuth of telescope")
    c.add("AIRMASS", airmass_gueymard(alt), "Airmass at frame center (Gueymard 1993)")
    c.add("PIERSIDE", "East" if az < 180 else "West", "Telescope pointing state")
    c.add("SITEELEV", elev, "[m] Observation site elevation")
    c.add("SITELAT", lat, "[deg] Observation site latitude")
    c.add("SITELONG", lon, "[deg] Observation site longitude")
    c.add("FWHEEL", "Moravian USB Filter ", "Filter Wheel name")
    c.add("FILTER", fr.filter, "Active filter name")
    if fr.object is not None:
        c.add("OBJECT", fr.object, "Name of the object of interest")
    if fr.target is not None:
        c.add("OBJCTRA", sexa(fr.target[0] / 15.0, " ", 0, False), "[H M S] RA of imaged object")
        c.add("OBJCTDEC", sexa(fr.target[1], " ", 0, True), "[D M S] Declination of imaged object")
        c.add("OBJCTROT", 0.0, "[deg] planned rotation of imaged object")
    c.add("FOCNAME", "PlaneWave Focuser (v", "Focusing equipment name")
    pos = int(round(fr.focus))
    c.add("FOCPOS", pos, "[step] Focuser position")
    c.add("FOCUSPOS", pos, "[step] Focuser position")
    c.add("FOCUSSZ", 1.0, "[um] Focuser step size")
    w = weather(fr.t, fr.night, seed)
    c.add("CLOUDCVR", w["cloud"], "[percent] Cloud cover")
    c.add("DEWPOINT", w["dew"] + float(rng.normal(0, 0.01)), "[degC] Dew point")
    c.add("HUMIDITY", w["hum"], "[percent] Relative humidity")
    c.add("PRESSURE", w["press"] + float(rng.normal(0, 0.01)), "[hPa] Air pressure")
    c.add("SKYBRGHT", float(rng.uniform(0.03, 0.06)), "[lux] Sky brightness")
    c.add("MPSAS", round(float(rng.uniform(21.2, 21.6)), 2), "[mags/arcsec^2] Sky quality")
    c.add("SKYTEMP", w["skytemp"] - 6 + float(rng.normal(0, 0.05)), "[degC] Sky temperature")
    c.add("STARFWHM", 2.0 + float(rng.uniform(0, 1.2)), "Star FWHM")
    c.add("AMBTEMP", w["temp"], "[degC] Ambient air temperature")
    c.add("WINDDIR", w["dir"], "[deg] Wind direction: 0=N, 180=S, 90=E, 270=W")
    c.add("WINDGUST", round(w["gust"] * 3.6, 2), "[kph] Wind gust")
    c.add("WINDSPD", round(w["wind"] * 3.6, 3), "[kph] Wind speed")
    c.add("ROWORDER", "TOP-DOWN", "FITS Image Orientation")
    c.add("EQUINOX", 2000.0, "Equinox of celestial coordinate system")
    c.add("SWCREATE", "N.I.N.A. 2.2.0.9001 ", "Software that created this file")
    c.add("BSCALE", 1)
    c.add("BZERO", 32768)
    return c.cards


def pixels(fr: FrameSpec, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Plausible uint16 pixels: 512 ADU bias, dark current, flat level, sky and stars."""
    ny, nx = shape
    img = rng.standard_normal(shape, dtype=np.float32)
    img *= 6.0
    img += 512.0
    if fr.image_type == "dark":
        img += 0.02 * fr.exptime
        hot = rng.integers(0, ny * nx, size=max(1, ny * nx // 2000))
        img.flat[hot] += rng.uniform(500, 20000, size=hot.size).astype(np.float32)
    elif fr.image_type == "flat":
        yy, xx = np.ogrid[:ny, :nx]
        r2 = ((yy - ny / 2) / ny) ** 2 + ((xx - nx / 2) / nx) ** 2
        level = float(rng.uniform(20000, 40000))
        img += (level * (1 - 0.3 * r2)).astype(np.float32)
        img += rng.standard_normal(shape, dtype=np.float32) * np.float32(math.sqrt(level / 0.256))
    elif fr.image_type == "science":
        img += np.float32(1.5 * fr.exptime)
        for _ in range(3):
            cy, cx = float(rng.uniform(0, ny)), float(rng.uniform(0, nx))
            amp, sig = float(rng.uniform(300, 30000)), 1.3
            y0, y1 = max(0, int(cy - 6)), min(ny, int(cy + 7))
            x0, x1 = max(0, int(cx - 6)), min(nx, int(cx + 7))
            yy, xx = np.ogrid[y0:y1, x0:x1]
            img[y0:y1, x0:x1] += (amp * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sig**2))).astype(np.float32)
    np.clip(img, 0, 65535, out=img)
    return img.astype(np.uint16)
