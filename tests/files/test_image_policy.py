"""The upload policy's checks made before any decoder runs: the allowlist by magic number, size, names."""
import io

import pytest
from PIL import Image as PILImage

from embeddings.files.image_policy import RejectedImage, check, check_size, clean_filename, sniff_format


# ---- sniff_format: the allowlist by magic number ---------------------------------------------
def _encoded(fmt, mode="RGB", **kw):
    buf = io.BytesIO()
    PILImage.new(mode, (4, 3), "red").save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, expected, kw", [
    ("JPEG", "JPEG", {}),
    ("PNG", "PNG", {}),
    ("GIF", "GIF", {}),
    ("WEBP", "WEBP", {}),
    ("BMP", "BMP", {}),
    ("TIFF", "TIFF", {}),  # little-endian: II*\0
])
def test_sniff_format_recognises_each_allowed_format(fmt, expected, kw):
    assert sniff_format(_encoded(fmt, **kw)) == expected


@pytest.mark.parametrize("magic, expected", [
    (b"\xff\xd8\xff\xe0", "JPEG"),
    (b"\x89PNG\r\n\x1a\n", "PNG"),
    (b"GIF87a", "GIF"),
    (b"GIF89a", "GIF"),
    (b"RIFF\x10\x00\x00\x00WEBPVP8 ", "WEBP"),
    (b"BM", "BMP"),
    (b"II*\x00", "TIFF"),
    (b"MM\x00*", "TIFF"),  # big-endian TIFF
])
def test_sniff_format_magic_numbers(magic, expected):
    assert sniff_format(magic + b"\x00" * 32) == expected


HOSTILE = {
    "eps": b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n",
    "eps-binary-header": b"\xc5\xd0\xd3\xc6" + b"\x00" * 28,  # DOS EPS binary header
    "psd": b"8BPS\x00\x01" + b"\x00" * 32,
    "pdf": b"%PDF-1.7\n1 0 obj\n<< >>\nendobj\n",
    "svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
    "svg-xml": b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>',
    "svg-bom-space": b"\xef\xbb\xbf  <svg/>",
    "html": b"<!doctype html><script>alert(1)</script>",
    "ico": b"\x00\x00\x01\x00\x01\x00\x10\x10\x00\x00\x01\x00\x20\x00" + b"\x00" * 32,
    "cur": b"\x00\x00\x02\x00\x01\x00" + b"\x00" * 32,
    "tga-like": b"\x00\x00\x02\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x00\x01\x00\x18\x00" + b"\xff\x00\x00",
    "riff-wave": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 24,
    "riff-avi": b"RIFF\x24\x00\x00\x00AVI LIST" + b"\x00" * 24,
    "riff-short": b"RIFF",
    "text": b"just some text\n",
    "jpeg-magic-late": b" \xff\xd8\xff\xe0" + b"\x00" * 16,  # the magic must be at byte 0
    "jp2": b"\x00\x00\x00\x0cjP  \r\n\x87\n" + b"\x00" * 16,
    "qoi": b"qoif\x00\x00\x00\x01\x00\x00\x00\x01\x03\x00",
}


@pytest.mark.parametrize("name", HOSTILE)
def test_sniff_format_refuses_everything_else(name):
    with pytest.raises(RejectedImage, match="not a supported image"):
        sniff_format(HOSTILE[name])


def test_sniff_format_refuses_real_files_of_other_formats():
    for fmt, mode in (("ICO", "RGBA"), ("TGA", "RGB"), ("PCX", "RGB"), ("PPM", "RGB"), ("EPS", "RGB")):
        try:
            data = _encoded(fmt, mode)
        except (OSError, KeyError):  # EPS needs Ghostscript to write
            continue
        with pytest.raises(RejectedImage):
            sniff_format(data)


# ---- check: empty and size ----------------------------------------------------------------------
def test_check_refuses_empty():
    with pytest.raises(RejectedImage, match="empty"):
        check(b"")


def test_check_returns_the_sniffed_format():
    assert check(_encoded("PNG")) == "PNG"


def test_check_refuses_over_the_size_limit(settings):
    png = _encoded("PNG")
    settings.MAX_UPLOAD_BYTES = len(png)
    assert check(png) == "PNG"  # exactly at the limit: taken
    settings.MAX_UPLOAD_BYTES = len(png) - 1
    with pytest.raises(RejectedImage, match="larger than"):
        check(png)
    # the size is checked before the format: a big file of any kind is refused for its size
    with pytest.raises(RejectedImage, match="larger than"):
        check(HOSTILE["eps"] + b"%" * len(png))


def test_check_size_alone(settings):
    settings.MAX_UPLOAD_BYTES = 3 * 1024 * 1024
    check_size(3 * 1024 * 1024)
    with pytest.raises(RejectedImage, match="larger than 3 MB"):
        check_size(3 * 1024 * 1024 + 1)


# ---- clean_filename ---------------------------------------------------------------------------
@pytest.mark.parametrize("raw, clean", [
    ("photo.jpg", "photo.jpg"),
    ("/etc/passwd", "passwd"),
    ("../../secret.png", "secret.png"),
    ("a/b/c/d.gif", "d.gif"),
    ("C:\\Users\\me\\Pictures\\cat.jpg", "cat.jpg"),
    ("..\\..\\evil.png", "evil.png"),
    ("bad\x00name\x07.jpg", "badname.jpg"),
    ("line\nbreak\r\ttab.png", "linebreaktab.png"),
    ("ré sumé ☃.png", "ré sumé ☃.png"),
    ("\u202eevil.gpj.png", "evil.gpj.png"),  # right-to-left override is not printable
    ("", "unnamed"),
    (None, "unnamed"),
    ("dir/", "unnamed"),
    ("\x00\x01", "unnamed"),
])
def test_clean_filename(raw, clean):
    assert clean_filename(raw) == clean


def test_clean_filename_cuts_at_255():
    assert clean_filename("a" * 1000 + ".jpg") == "a" * 255
    assert clean_filename("dir/" + "b" * 255) == "b" * 255
