"""Photo facts from EXIF: taken time with its offset, camera, GPS; garbage is left out, never fatal."""
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest
from PIL import Image as PILImage

from embeddings.files.photo_facts import EMPTY, parse_gps_coordinate, parse_offset, parse_taken, read_facts


def photo(fmt="JPEG", **tags) -> bytes:
    """A small picture whose EXIF holds `tags` (tag number -> value; 'gps' -> the GPS IFD dict)."""
    exif = PILImage.Exif()
    gps = tags.pop("gps", None)
    for tag, value in tags.items():
        exif[int(tag)] = value
    if gps is not None:
        exif[0x8825] = gps
    buf = io.BytesIO()
    PILImage.new("RGB", (40, 30), (120, 50, 200)).save(buf, fmt, exif=exif)
    return buf.getvalue()


GPS = {1: "N", 2: (48.0, 51.0, 29.5), 3: "W", 4: (2.0, 17.0, 40.0)}


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])  # Pillow cannot write a GPS IFD into TIFF
def test_reads_taken_time_camera_and_gps(fmt):
    data = photo(fmt, **{"36867": "2021:07:14 18:30:05", "36881": "+02:00", "271": "Fujifilm", "272": "X-T3"}, gps=GPS)
    facts = read_facts(data, fmt)
    assert facts["taken_at"] == datetime(2021, 7, 14, 18, 30, 5, tzinfo=timezone(timedelta(hours=2)))
    assert facts["taken_at"].astimezone(UTC) == datetime(2021, 7, 14, 16, 30, 5, tzinfo=UTC)
    assert facts["taken_offset"] == "+02:00"
    assert (facts["camera_make"], facts["camera_model"]) == ("Fujifilm", "X-T3")
    assert facts["gps_lat"] == pytest.approx(48 + 51 / 60 + 29.5 / 3600)
    assert facts["gps_lon"] == pytest.approx(-(2 + 17 / 60 + 40 / 3600))


def test_no_exif_no_facts():
    assert read_facts(photo(), "JPEG") == EMPTY


def test_without_offset_the_wall_clock_is_kept_as_utc():
    facts = read_facts(photo(**{"36867": "2019:01:02 03:04:05"}), "JPEG")
    assert facts["taken_at"] == datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC) and facts["taken_offset"] == ""


@pytest.mark.parametrize("value", ["0000:00:00 00:00:00", "", "    ", "2021:13:40 99:00:00", "yesterday", "\x00\x00"])
def test_bad_dates_are_left_out(value):
    assert parse_taken(value) == (None, "")


@pytest.mark.parametrize("value,expected", [("+02:00", "+02:00"), ("-0530", "-05:30"), ("+14:00", "+14:00"),
                                            ("+25:00", ""), ("02:00", ""), ("", ""), (None, ""), (b"+01:00", "+01:00")])
def test_offsets(value, expected):
    assert parse_offset(value)[0] == expected


@pytest.mark.parametrize("dms,ref,expected", [
    ((10.0, 30.0, 0.0), "S", -10.5),
    (((10, 1), (30, 1), (0, 1)), "N", 10.5),
    ((10.0, 30.0), "N", None),  # too short
    ((95.0, 0.0, 0.0), "N", None),  # beyond the pole
    ((10.0, 75.0, 0.0), "N", None),  # minutes over 59
    ((float("nan"), 0.0, 0.0), "N", None),
    (((1, 0), (0, 1), (0, 1)), "N", None),  # division by zero
    ("garbage", "N", None),
    (None, "N", None),
])
def test_gps_coordinates(dms, ref, expected):
    got = parse_gps_coordinate(dms, ref, 90)
    assert got == (pytest.approx(expected) if expected is not None else None)


def test_garbage_exif_values_are_left_out():
    data = photo(**{"36867": "not a date", "271": "\x00\x01Canon\x00" + "x" * 300, "272": ""},
                 gps={1: "N", 2: (1.0, 2.0, 3.0)})  # latitude without longitude
    facts = read_facts(data, "JPEG")
    assert facts["taken_at"] is None and facts["gps_lat"] is None and facts["gps_lon"] is None
    assert facts["camera_make"].startswith("Canon") and len(facts["camera_make"]) == 64
    assert facts["camera_model"] == ""


def test_damaged_bytes_give_no_facts():
    data = photo(**{"36867": "2021:07:14 18:30:05"})
    assert read_facts(data[:40], "JPEG") == EMPTY
    assert read_facts(b"\xff\xd8\xff\xe1\xff\xffExif\x00\x00garbage", "JPEG") == EMPTY
