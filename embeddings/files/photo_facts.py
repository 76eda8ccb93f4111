"""Photo facts from EXIF: when the photo was taken, the camera, and where (GPS).

Read for uploads and library files alike, after the image policy has sniffed the format, so only
that format's parser opens the bytes. EXIF is written by cameras, phones and editors of every
quality: any value that is missing, malformed or out of range is left out, never an error.
"""
from __future__ import annotations

import io
import math
import re
from datetime import UTC, datetime, timedelta, timezone

from PIL import Image as PILImage

EXIF_IFD, GPS_IFD = 0x8769, 0x8825
MAKE, MODEL, DATETIME = 0x010F, 0x0110, 0x0132
DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL, DATETIME_DIGITIZED = 0x9003, 0x9011, 0x9004
GPS_LAT_REF, GPS_LAT, GPS_LON_REF, GPS_LON = 1, 2, 3, 4
CAMERA_MAX = 64  # Image.camera_make / camera_model length
_OFFSET = re.compile(r"^([+-])(\d{2}):?(\d{2})$")

EMPTY = {"taken_at": None, "taken_offset": "", "camera_make": "", "camera_model": "", "gps_lat": None, "gps_lon": None}


def _text(value) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    # NULs and padding are common in camera strings; control characters never mean anything.
    return "".join(ch for ch in value if ch.isprintable()).strip()


def parse_offset(value) -> tuple[str, timezone | None]:
    """EXIF OffsetTime* ("+02:00") -> ("+02:00", tzinfo), or ("", None) when absent or odd."""
    m = _OFFSET.match(_text(value))
    if not m:
        return "", None
    sign, hours, minutes = m.group(1), int(m.group(2)), int(m.group(3))
    if hours > 14 or minutes > 59:  # real offsets span -12:00..+14:00
        return "", None
    delta = timedelta(hours=hours, minutes=minutes) * (-1 if sign == "-" else 1)
    return f"{sign}{hours:02d}:{minutes:02d}", timezone(delta)


def parse_taken(value, offset=None) -> tuple[datetime | None, str]:
    """EXIF "YYYY:MM:DD HH:MM:SS" (+ its offset) -> (aware datetime, offset text).

    Without an offset the camera's wall-clock time is kept as if it were UTC (the offset text is
    then empty): the local zone is unknown, and shifting by the server's zone would be a guess."""
    text = _text(value)[:19]
    try:
        naive = datetime.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None, ""
    if naive.year < 1800:  # "0000:00:00 00:00:00" fails above; 1800 is older than photography
        return None, ""
    offset_text, tz = parse_offset(offset)
    return naive.replace(tzinfo=tz or UTC), offset_text


def _ratio(value) -> float | None:
    try:
        f = float(value[0]) / float(value[1]) if isinstance(value, tuple) and len(value) == 2 else float(value)
    except (TypeError, ValueError, ZeroDivisionError, IndexError):
        return None
    return f if math.isfinite(f) else None


def parse_gps_coordinate(dms, ref, limit: float) -> float | None:
    """Degrees, minutes, seconds (+ N/S/E/W) -> signed decimal degrees, or None."""
    try:
        parts = [_ratio(p) for p in dms]
    except TypeError:
        return None
    if len(parts) != 3 or any(p is None or p < 0 for p in parts) or parts[1] >= 60 or parts[2] >= 60:
        return None
    value = parts[0] + parts[1] / 60 + parts[2] / 3600
    if value > limit:
        return None
    ref = _text(ref).upper()[:1]
    return round(-value if ref in ("S", "W") else value, 7)


def facts_from_exif(exif: PILImage.Exif) -> dict:
    facts = dict(EMPTY)
    try:
        sub = exif.get_ifd(EXIF_IFD)
    except Exception:
        sub = {}
    # DateTimeOriginal lives in the Exif IFD; some writers put it (or only DateTime) in IFD0.
    for tag, offset_tag in ((DATETIME_ORIGINAL, OFFSET_TIME_ORIGINAL), (DATETIME_DIGITIZED, None), (DATETIME, None)):
        raw = sub.get(tag) or exif.get(tag)
        if raw:
            offset = (sub.get(offset_tag) or exif.get(offset_tag)) if offset_tag else None
            taken, offset_text = parse_taken(raw, offset)
            if taken is not None:
                facts["taken_at"], facts["taken_offset"] = taken, offset_text
                break
    facts["camera_make"] = _text(exif.get(MAKE))[:CAMERA_MAX]
    facts["camera_model"] = _text(exif.get(MODEL))[:CAMERA_MAX]
    try:
        gps = exif.get_ifd(GPS_IFD)
    except Exception:
        gps = {}
    if gps:
        lat = parse_gps_coordinate(gps.get(GPS_LAT, ()), gps.get(GPS_LAT_REF), 90)
        lon = parse_gps_coordinate(gps.get(GPS_LON, ()), gps.get(GPS_LON_REF), 180)
        if lat is not None and lon is not None and (lat, lon) != (0, 0):  # 0,0: an unset receiver
            facts["gps_lat"], facts["gps_lon"] = lat, lon
    return facts


def read_facts(data: bytes, fmt: str) -> dict:
    """The photo facts of image bytes already sniffed as `fmt` (the only parser allowed); the
    model field names as keys. Opening parses the header only; no pixels are decoded."""
    try:
        with PILImage.open(io.BytesIO(data), formats=[fmt]) as im:
            return facts_from_exif(im.getexif())
    except Exception:  # damaged EXIF never costs the image; it only has no facts
        return dict(EMPTY)
