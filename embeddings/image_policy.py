"""The one policy for every path that decodes user bytes: uploads, folder imports, search by
image and image encoding. Before any decoder sees the bytes: size limit, format allowlist by
magic number (so EPS, PSD, PDF, SVG and the rest never reach Pillow's parsers), and the pixel
count read from the header; then a full decode through that one format's parser.
"""
from __future__ import annotations

import io
import os
from dataclasses import dataclass

from django.conf import settings
from PIL import Image as PILImage
from PIL import ImageOps

from .clip.preprocessing import open_image

# Formats we accept, recognised by their first bytes before Pillow parses anything.
MAGIC = {
    b"\xff\xd8\xff": "JPEG",
    b"\x89PNG\r\n\x1a\n": "PNG",
    b"GIF87a": "GIF",
    b"GIF89a": "GIF",
    b"BM": "BMP",
    b"II*\x00": "TIFF",
    b"MM\x00*": "TIFF",
}
EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
THUMB_SIZE = 320


class RejectedImage(ValueError):
    """The bytes are not an image we take; the message says why."""


def sniff_format(data: bytes) -> str:
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, fmt in MAGIC.items():
        if data.startswith(magic):
            return fmt
    raise RejectedImage("not a supported image (JPEG, PNG, GIF, WebP, BMP or TIFF)")


def check_size(size: int) -> None:
    """Refuse a file over the size limit (callers that know the size check before reading)."""
    if size > settings.MAX_UPLOAD_BYTES:
        raise RejectedImage(f"the file is larger than {settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB")


def check(data: bytes) -> str:
    """Size and allowlist; returns the sniffed format, the only parser allowed to open the bytes."""
    if not data:
        raise RejectedImage("the file is empty")
    check_size(len(data))
    return sniff_format(data)


def decode(data: bytes, *, draft_target: int | None = None) -> PILImage.Image:
    """An allowed image as RGB (EXIF orientation applied, first frame), or RejectedImage.

    For queries: the result goes to the CLIP service as a picture, never as bytes.
    """
    fmt = check(data)
    try:
        return open_image(data, formats=[fmt], max_pixels=settings.MAX_IMAGE_PIXELS,
                          draft=draft_target is not None, target=draft_target or 224)
    except ValueError as exc:
        raise RejectedImage(str(exc)) from None


@dataclass
class Inspected:
    format: str
    width: int
    height: int
    thumbnail: bytes


def inspect_image(data: bytes) -> Inspected:
    """Check an upload by its content, size and pixel count; make its thumbnail."""
    fmt = check(data)
    try:
        with PILImage.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            if im.getexif().get(0x0112) in (5, 6, 7, 8):  # EXIF orientation: shown rotated by 90°
                width, height = height, width
            if width * height > settings.MAX_IMAGE_PIXELS:
                raise RejectedImage(f"the image is {width}x{height}: more than {settings.MAX_IMAGE_PIXELS} pixels")
            im.draft("RGB", (THUMB_SIZE * 2, THUMB_SIZE * 2))  # JPEG: decode at reduced scale
            im.load()  # decodes fully: catches truncated and corrupt data
            thumb = ImageOps.exif_transpose(im)
            thumb = thumb.convert("RGBA").convert("RGB") if thumb.mode in ("P", "PA", "LA", "RGBA") else thumb.convert("RGB")
            thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=85)
    except RejectedImage:
        raise
    except (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning):
        raise RejectedImage("the image has too many pixels (decompression bomb)") from None
    except Exception as exc:  # Pillow raises many types for broken files
        raise RejectedImage(f"the file is damaged or not a readable {fmt} image ({exc})") from None
    return Inspected(fmt, width, height, buf.getvalue())


def clean_filename(name: str) -> str:
    """Keep the original name as display data only: no path, no control characters."""
    name = os.path.basename((name or "").replace("\\", "/"))
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "unnamed"
