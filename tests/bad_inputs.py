"""The one corpus of awkward files, made here so nothing binary is committed.

Each entry: name -> (bytes, expected). "rejected": not an image the app accepts (empty, cut short,
corrupt, text, HTML or SVG named as an image, a decompression bomb, a header claiming 30k x 30k);
every entry point must refuse it with a reason and store nothing. "indexed": an odd but valid
image (CMYK, 16-bit, palette with transparency, RGBA, animated, EXIF-rotated) or a hostile file
name; it must be stored under a generated name and encoded.
"""
import io
import struct
import zlib

import numpy as np
from PIL import Image


def _save(img, fmt, **kw):
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_header_only(width, height):
    """A PNG that claims huge dimensions; its pixel data is tiny (and incomplete)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _picture(seed=0, size=(96, 64)):
    rng = np.random.default_rng(seed)
    arr = np.zeros((size[1], size[0], 3), np.uint8)
    arr[:, : size[0] // 2] = rng.integers(0, 255, 3)
    arr[:, size[0] // 2 :] = rng.integers(0, 255, 3)
    return Image.fromarray(arr)


def corpus() -> dict[str, tuple[bytes, str]]:
    good_jpeg = _save(_picture(1), "JPEG", quality=90)
    rgba = _picture(2).convert("RGBA")
    rgba.putalpha(128)
    palette = _picture(3).convert("P", palette=Image.ADAPTIVE, colors=8)
    palette.info["transparency"] = 0
    frames = [_picture(10 + i) for i in range(3)]
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° when shown
    i16 = Image.fromarray((np.linspace(0, 65535, 96 * 64).reshape(64, 96)).astype(np.uint16))
    return {
        "zero-byte.jpg": (b"", "rejected"),
        "truncated.jpg": (good_jpeg[: len(good_jpeg) // 2], "rejected"),
        "corrupt.jpg": (good_jpeg[:200] + bytes(range(256)) * 4, "rejected"),
        "text.jpg": (b"just some text, not an image\n" * 10, "rejected"),
        "page.png": (b"<!doctype html><html><body><script>alert(1)</script></body></html>", "rejected"),
        "vector.png": (b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>',
                       "rejected"),
        "xml-vector.png": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><rect/></svg>', "rejected"),
        "vector.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"><circle r="5"/></svg>', "rejected"),
        "header-only.png": (b"\x89PNG\r\n\x1a\n" + b"\x00" * 20, "rejected"),
        "bomb.png": (_save(Image.new("1", (12000, 12000)), "PNG"), "rejected"),  # 144 MP in a few KB
        "huge-30k.png": (_png_header_only(30000, 30000), "rejected"),
        "cmyk.jpg": (_save(_picture(4).convert("CMYK"), "JPEG"), "indexed"),
        "sixteen-bit.png": (_save(i16, "PNG"), "indexed"),
        "palette-transparent.png": (_save(palette, "PNG"), "indexed"),
        "rgba.png": (_save(rgba, "PNG"), "indexed"),
        "animated.gif": (_save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0), "indexed"),
        "animated.webp": (_save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=100), "indexed"),
        "exif-rotated.jpg": (_save(_picture(5), "JPEG", exif=exif), "indexed"),
        "../../etc/passwd.jpg": (_save(_picture(6), "JPEG"), "indexed"),
        "<img src=x onerror=alert(1)>.png": (_save(_picture(7), "PNG"), "indexed"),
        ("long-" + "x" * 400 + ".jpg"): (_save(_picture(8), "JPEG"), "indexed"),
        "\u202eevil\u202dgnp.jpg": (_save(_picture(9), "JPEG"), "indexed"),
    }
