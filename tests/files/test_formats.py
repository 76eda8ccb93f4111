"""What bytes say they are, without a decoder (embeddings.files.formats): the allowlist, names for
refused formats, and the structure limits for JPEG scans and segments and PNG chunks."""
import io
import struct
import zlib

import pytest
from PIL import Image

from embeddings.files import formats


def encoded(fmt, **kw):
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt, expected", [("JPEG", "JPEG"), ("PNG", "PNG"), ("GIF", "GIF"), ("BMP", "BMP"),
                                           ("TIFF", "TIFF"), ("WEBP", "WEBP")])
def test_allowed_formats_by_their_first_bytes(fmt, expected):
    assert formats.allowed_format(encoded(fmt)) == expected
    assert formats.refused_name(encoded(fmt)) is None or formats.allowed_format(encoded(fmt))


@pytest.mark.parametrize("head, name", [(b"%PDF-1.7\n", "PDF"), (b"8BPS\x00\x01", "PSD (Photoshop)"),
                                        (b"%!PS-Adobe-3.0 EPSF", "EPS/PostScript")])
def test_refused_formats_are_named(head, name):
    data = head + b"\x00" * 64
    assert formats.allowed_format(data) is None
    assert formats.refused_name(data) == name


def test_a_real_jpeg_and_png_pass_the_structure_limits():
    assert formats.jpeg_problem(encoded("JPEG", progressive=True)) is None
    assert formats.png_problem(encoded("PNG")) is None


def test_a_jpeg_of_many_empty_scans_is_refused():
    head = encoded("JPEG")[:-2]  # without its end marker
    scan = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00" + b"\x00"
    problem = formats.jpeg_problem(head + scan * (formats.MAX_JPEG_SCANS + 5) + b"\xff\xd9")
    assert problem and "scans" in problem


def test_a_png_of_too_many_chunks_is_refused(monkeypatch):
    monkeypatch.setattr(formats, "MAX_PNG_CHUNKS", 50)
    chunk = struct.pack(">I", 0) + b"tEXt" + struct.pack(">I", zlib.crc32(b"tEXt"))
    data = b"\x89PNG\r\n\x1a\n" + chunk * 60
    assert "chunks" in formats.png_problem(data)
