"""The one policy for every path that decodes user bytes: uploads, folder imports, search by
image and image encoding. Before any decoder sees the bytes: size limit, format allowlist by
magic number (so EPS, PSD, PDF, SVG and the rest never reach Pillow's parsers), the structure
limits of embeddings.files.formats, and the pixel count read from the header; then a full decode
through that one format's parser. Every refusal says why in words a person can read.
"""
from __future__ import annotations

import io
import os
import re
from dataclasses import dataclass

from django.conf import settings
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from embeddings.clip.preprocessing import exif_orientation, open_image, to_rgb, upright
from embeddings.files import previews
from embeddings.files.formats import ALLOWED, STRUCTURE_CHECKS, allowed_format, refused_name

EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "BMP": "bmp", "TIFF": "tif"}
THUMB_SIZE = 320
_REPR = re.compile(r"\s*<[\w.]+ object at 0x[0-9a-fA-F]+>")  # Pillow names its file object in some errors
_LEADING_IMAGE = re.compile(r"^(image( item \d+)?: )+")  # the CLIP service's prefix, said once by the caller

class RejectedImage(ValueError):
    """The bytes are not an image we take; the message says why."""


def sniff_format(data: bytes) -> str:
    fmt = allowed_format(data)
    if fmt is not None:
        return fmt
    name = refused_name(data)
    if name is not None:
        raise RejectedImage(f"not a supported image: {name} is not an allowed format (allowed: {ALLOWED})")
    raise RejectedImage(f"not a supported image: the content is not {ALLOWED}")


def readable(exc: BaseException, fmt: str = "") -> str:
    """An exception from a decoder, said for a person: no object reprs, no repeated prefixes,
    never empty."""
    if isinstance(exc, UnidentifiedImageError):
        return f"the file starts like a {fmt} image but is not a valid one" if fmt else "not a recognised image"
    if isinstance(exc, (PILImage.DecompressionBombError, PILImage.DecompressionBombWarning)):
        return "the image has too many pixels (a possible decompression bomb)"
    if isinstance(exc, MemoryError):
        return "the image needs more memory to decode than this server allows"
    text = _LEADING_IMAGE.sub("", _REPR.sub("", str(exc))).strip().rstrip(":").strip()
    return text[:500] or f"{type(exc).__name__} while decoding"


def check_size(size: int) -> None:
    """Refuse a file over the size limit (callers that know the size check before reading)."""
    if size > settings.MAX_UPLOAD_BYTES:
        raise RejectedImage(f"the file is larger than {settings.MAX_UPLOAD_BYTES // (1024 * 1024)} MB")


def check(data: bytes) -> str:
    """Size, allowlist and structure limits; returns the sniffed format, the only parser allowed to
    open the bytes."""
    if not data:
        raise RejectedImage("the file is empty")
    check_size(len(data))
    fmt = sniff_format(data)
    problem = STRUCTURE_CHECKS.get(fmt, lambda _data: None)(data)
    if problem:
        raise RejectedImage(f"not a supported image: {problem}")
    return fmt


def decode(data: bytes, *, draft_target: int | None = None) -> PILImage.Image:
    """An allowed image as RGB (EXIF orientation applied, first frame), or RejectedImage.

    For queries: the result goes to the CLIP service as a picture, never as bytes.
    """
    fmt = check(data)
    try:
        return open_image(data, formats=[fmt], max_pixels=settings.MAX_IMAGE_PIXELS,
                          draft=draft_target is not None, target=draft_target or 224)
    except (ValueError, MemoryError) as exc:
        reason = readable(exc, fmt)
        if reason.startswith("not a recognised image format"):  # open_image's words for any format
            reason = f"the file starts like a {fmt} image but is not a valid one"
        elif reason.startswith("corrupt or truncated image: "):  # the upload path's words, for one wording
            reason = f"the file is damaged or not a readable {fmt} image ({reason.split(': ', 1)[1]})"
        elif "decompression bomb" in reason:
            reason = f"the image has too many pixels (more than {settings.MAX_IMAGE_PIXELS:,}; a possible decompression bomb)"
        raise RejectedImage(reason) from None


@dataclass
class Inspected:
    format: str
    width: int
    height: int
    thumbnail: bytes
    preview: bytes = b""  # a large picture as decoded, for the worker (embeddings.files.previews)


def inspect_image(data: bytes) -> Inspected:
    """Check an upload by its content, size and pixel count; make its thumbnail."""
    fmt = check(data)
    try:
        with PILImage.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
            orientation = exif_orientation(im)
            if orientation in (5, 6, 7, 8):  # shown rotated by 90°
                width, height = height, width
            if width * height > settings.MAX_IMAGE_PIXELS:
                raise RejectedImage(f"the image is {width}x{height}: more than {settings.MAX_IMAGE_PIXELS:,} pixels")
            # JPEG: decode at a reduced DCT scale, still >= THUMB_SIZE a side: for a 12 MP photo 1/8
            # (500x375), the scale CLIP's own draft takes, so the preview is what the worker would decode.
            im.draft("RGB", (THUMB_SIZE, THUMB_SIZE))
            im.load()  # decodes fully: catches truncated and corrupt data
            preview = _preview(im, orientation) if width * height >= previews.MIN_PIXELS else b""
            thumb = _thumbnail(im, orientation)
            buf = io.BytesIO()
            thumb.save(buf, "JPEG", quality=85)
    except RejectedImage:
        raise
    except Exception as exc:  # Pillow raises many types for broken files
        reason = readable(exc, fmt)
        if isinstance(exc, (UnidentifiedImageError, PILImage.DecompressionBombError, MemoryError)):
            raise RejectedImage(reason) from None
        raise RejectedImage(f"the file is damaged or not a readable {fmt} image ({reason})") from None
    return Inspected(fmt, width, height, buf.getvalue(), preview)


def _preview(im: PILImage.Image, orientation: int | None) -> bytes:
    """The decoded picture, upright RGB, no larger than previews.MAX_SIDE, as a JPEG."""
    picture = to_rgb(im)
    if max(picture.size) > previews.MAX_SIDE:
        picture = picture.copy() if picture is im else picture  # the thumbnail is made from `im` next
        picture.thumbnail((previews.MAX_SIDE, previews.MAX_SIDE))
    buf = io.BytesIO()
    upright(picture, orientation).save(buf, "JPEG", quality=previews.QUALITY)
    return buf.getvalue()


def _thumbnail(im: PILImage.Image, orientation: int | None) -> PILImage.Image:
    """A small upright RGB copy. Shrunk first (palettes made RGBA before, as resampling needs),
    so that no full-size copy is made beyond the decode itself; then made RGB and turned upright
    by the same routines as the model's input."""
    thumb = im.convert("RGBA") if im.mode in ("P", "PA", "1") else im.convert("RGB") if im.mode in ("LAB", "HSV") else im
    thumb.thumbnail((THUMB_SIZE, THUMB_SIZE))
    return upright(to_rgb(thumb), orientation)


def clean_filename(name: str) -> str:
    """Keep the original name as display data only: no path, no control characters."""
    name = os.path.basename((name or "").replace("\\", "/"))
    name = "".join(ch for ch in name if ch.isprintable())
    return name[:255] or "unnamed"
