"""What a file's bytes say it is, read without any decoder: the allowed formats by magic number,
a name for the common formats we refuse (so a person reads "PSD is not an allowed format", not
"corrupt"), and the structure limits that Pillow does not enforce itself.

The structure limits stop small files that cost a decoder far more than their pixel count: a
progressive JPEG is decoded once per scan over the whole image, so a 90 KB file of 5,000 empty
scans (a few bytes each) holds a 4 MP decode for 3.5 s (2-core AVX2 EPYC), and proportionally
longer at the pixel limit; Pillow reads JPEG and PNG marker segments and chunks one by one in
Python, so a file of millions of empty ones holds a process as long. Real files have ~10 scans
and a few dozen segments or chunks (a PNG's image data split into 8-64 KB chunks), far below
the limits.
"""
from __future__ import annotations

import re
import struct

ALLOWED = "JPEG, PNG, GIF, WebP, BMP or TIFF"

MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}

# Formats we recognise and refuse, by their first bytes: named in the refusal.
REFUSED = [
    (b"%!PS", "EPS/PostScript"),
    (b"\xc5\xd0\xd3\xc6", "EPS (with a preview)"),
    (b"8BPS", "PSD (Photoshop)"),
    (b"%PDF", "PDF"),
    (b"II+\x00", "BigTIFF"),
    (b"MM\x00+", "BigTIFF"),
    (b"\x00\x00\x01\x00", "ICO (icon)"),
    (b"\x00\x00\x02\x00", "CUR (cursor)"),
    (b"DDS ", "DDS (DirectDraw texture)"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", "JPEG 2000"),
    (b"\xff\x4f\xff\x51", "JPEG 2000"),
    (b"\x00\x00\x00\x0cJXL \r\n\x87\n", "JPEG XL"),
    (b"\xff\x0a", "JPEG XL"),
    (b"SIMPLE  =", "FITS"),
    (b"BLP1", "BLP (Blizzard texture)"),
    (b"BLP2", "BLP (Blizzard texture)"),
    (b"qoif", "QOI"),
    (b"icns", "ICNS (icon)"),
    (b"gimp xcf", "XCF (GIMP)"),
    (b"\xd7\xcd\xc6\x9a", "WMF"),
    (b"\x59\xa6\x6a\x95", "Sun raster"),
    (b"\x01\xda", "SGI"),
    (b"GRIB", "GRIB"),
    (b"BUFR", "BUFR"),
    (b"\x89HDF", "HDF5"),
    (b"FORM", "IFF"),
    (b"PK\x03\x04", "ZIP (or an office document)"),
    (b"\x1f\x8b", "gzip"),
]
FTYP_BRANDS = {b"avif": "AVIF", b"avis": "AVIF", b"heic": "HEIC", b"heix": "HEIC", b"mif1": "HEIF", b"msf1": "HEIF"}

# Structure limits (see the module's docstring).
MAX_JPEG_SCANS = 100
MAX_JPEG_SEGMENTS = 2_000
MAX_PNG_CHUNKS = 100_000


def allowed_format(data: bytes) -> str | None:
    """The allowed format the first bytes announce, or None."""
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in MAGIC.items():
        if data.startswith(magic):
            return fmt
    return None


def refused_name(data: bytes) -> str | None:
    """A person's name for a format we recognise and refuse, or None."""
    if data.endswith(b"TRUEVISION-XFILE.\x00"):  # before the magic numbers: a TGA may start like a cursor
        return "TGA (Targa)"
    for magic, name in REFUSED:
        if data.startswith(magic):
            return name
    if data[4:8] == b"ftyp":
        return FTYP_BRANDS.get(data[8:12], "an ISO media file (MP4, HEIF …)")
    if data[:4] == b"RIFF":
        return "RIFF (not WebP)"
    if data[:1] == b"\x0a" and data[1:2] in b"\x00\x02\x03\x04\x05" and data[2:3] == b"\x01":
        return "PCX"
    if re.match(rb"P[1-7]\s", data[:3]):
        return "PNM (PPM/PGM/PBM)"
    head = data[:512].lstrip()
    if head[:1] == b"<":
        return "SVG" if b"<svg" in data[:4096].lower() else "HTML or XML text"
    if b"\x00" not in head:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:  # a character cut at the 512-byte mark is still text
            if exc.start < len(head) - 4:
                return None
        return "text"
    return None


_ENTROPY_END = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")  # the next marker after entropy-coded data


def jpeg_problem(data: bytes) -> str | None:
    """Walk a JPEG's markers (no decoding): too many scans or segments, or None."""
    pos, scans, segments = 2, 0, 0
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None  # not where a marker should be: the decoder will say what is wrong
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == 0xD9:  # end of image
            return None
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:  # no length
            pos += 2
            continue
        segments += 1
        if segments > MAX_JPEG_SEGMENTS:
            return f"the JPEG has more than {MAX_JPEG_SEGMENTS:,} marker segments"
        (length,) = struct.unpack(">H", data[pos + 2:pos + 4])
        pos += 2 + length
        if marker == 0xDA:  # start of scan: skip its entropy-coded data
            scans += 1
            if scans > MAX_JPEG_SCANS:
                return f"the JPEG has more than {MAX_JPEG_SCANS} scans (real progressive JPEGs have about 10)"
            found = _ENTROPY_END.search(data, pos)
            if found is None:
                return None
            pos = found.start()
    return None


def png_problem(data: bytes) -> str | None:
    """Walk a PNG's chunks by their lengths (no decoding): too many chunks, or None."""
    pos, chunks = 8, 0
    while pos + 8 <= len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        chunks += 1
        if chunks > MAX_PNG_CHUNKS:
            return f"the PNG has more than {MAX_PNG_CHUNKS:,} chunks"
        if kind == b"IEND":
            return None
        pos += 12 + length
    return None


STRUCTURE_CHECKS = {"JPEG": jpeg_problem, "PNG": png_problem}
