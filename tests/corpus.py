"""A corpus of real-world oddities, made by code (Pillow writes most; the rest are hand-made bytes),
so nothing binary is committed. Ideas from Pillow's own test images and from what cameras, editors
and fuzzers produce.

Each entry: name -> (bytes, expected). "ok": an odd but valid image of an allowed format that
every path takes (stored and encoded, searched by, encoded). "refused": refused before any
decoder with a reason (a format outside the allowlist, a lying header, a structure over a limit).
"either": an allowed format with damage that a path may take or refuse, but always with a reason,
and the same way on every path that decodes it.
"""
import io
import struct
import zlib

import numpy as np
from PIL import Image, TiffImagePlugin


def _save(img, fmt, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _picture(seed, size=(64, 48), mode="RGB"):
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    return Image.fromarray(arr).convert(mode)


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _after_soi(jpeg: bytes, *segments: bytes) -> bytes:
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_with(png: bytes, *chunks: bytes) -> bytes:
    """Extra chunks after IHDR."""
    end_ihdr = 8 + 8 + 13 + 4
    return png[:end_ihdr] + b"".join(chunks) + png[end_ihdr:]


def _png_raw(width, height, bit_depth, colour_type, raw: bytes) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(raw)) + _chunk(b"IEND", b"")


def _many_scan_jpeg(scans: int, side=256) -> bytes:
    """A grey progressive JPEG whose DC scan is followed by `scans` AC scans that each say "every
    block is empty" in a few bytes (EOB runs): a decoder walks the whole image once per scan."""
    head = _save(Image.new("L", (side, side), 128), "JPEG", progressive=True)
    second = head.find(b"\xff\xda", head.find(b"\xff\xda") + 2)
    dht = _segment(0xC4, bytes([0x11]) + bytes([1] + [0] * 15) + bytes([0xE0]))  # AC table 1: EOB14, code "0"
    run = (side // 8) ** 2
    bits = "0" + format(max(run, 16384) - 16384, "014b")
    bits += "1" * (-len(bits) % 8)
    payload = bytes(int(bits[i:i + 8], 2) for i in range(0, len(bits), 8)).replace(b"\xff", b"\xff\x00")
    sos = _segment(0xDA, bytes([1, 1, 0x01, 1, 63, 0]))
    return head[:second] + dht + (sos + payload) * scans + b"\xff\xd9"


def _patch(data: bytes, offset: int, new: bytes) -> bytes:
    return data[:offset] + new + data[offset + len(new):]


def _laughs() -> bytes:
    """XML whose entities expand to 10^9 characters, if anything expanded them."""
    entities = b"".join(b'<!ENTITY %c "&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;&%c;">' % (98 + i, *[97 + i] * 10) for i in range(8))
    return (b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">' + entities
            + b']><x:xmpmeta xmlns:x="adobe:ns:meta/">&i;</x:xmpmeta>')


def _exif(orientation=None, extra=b"") -> bytes:
    ex = Image.Exif()
    if orientation is not None:
        ex[0x0112] = orientation
    return ex.tobytes() + extra


def _tiff(frames, **kw) -> bytes:
    return _save(frames[0], "TIFF", save_all=True, append_images=frames[1:], **kw)


def _fits() -> bytes:
    cards = ["SIMPLE  =                    T", "BITPIX  =                    8", "NAXIS   =                    2",
             "NAXIS1  =                    4", "NAXIS2  =                    4", "END"]
    header = "".join(c.ljust(80) for c in cards).ljust(2880).encode()
    return header + bytes(range(16)).ljust(2880, b"\0")


def _psd() -> bytes:
    header = b"8BPS" + struct.pack(">H6sHIIHH", 1, b"\0" * 6, 3, 1, 1, 8, 3)
    return header + struct.pack(">III", 0, 0, 0) + struct.pack(">H", 0) + bytes([200, 10, 30])


def oddities() -> dict[str, tuple[bytes, str]]:
    rgb = _picture(1)
    jpeg = _save(rgb, "JPEG", quality=90)
    png = _save(rgb, "PNG")
    frames = [_picture(10 + i, (32, 24)) for i in range(3)]
    cmyk_jpeg = _save(_picture(2).convert("CMYK"), "JPEG")
    adobe = cmyk_jpeg.find(b"Adobe")  # APP14: "Adobe", version, two flag words, then the transform
    assert adobe > 0 and cmyk_jpeg[adobe + 11] == 0
    ycck_jpeg = _patch(cmyk_jpeg, adobe + 11, b"\x02")  # 2: the colours are YCCK
    grey16 = Image.fromarray((np.arange(64 * 48).reshape(48, 64) * 21).astype(np.uint16))
    palette = _picture(3).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    palette.info["transparency"] = 0
    many_gif = [Image.new("P", (8, 8), i % 256) for i in range(3000)]
    sof0 = jpeg.find(b"\xff\xc0")
    bmp = _save(rgb, "BMP")
    icc_huge = b"ICC_PROFILE\0"
    return {
        # ---- JPEG
        "progressive.jpg": (_save(rgb, "JPEG", progressive=True), "ok"),
        "exif-rotated-6.jpg": (_save(rgb, "JPEG", exif=_exif(6)), "ok"),
        "exif-orientation-9.jpg": (_save(rgb, "JPEG", exif=_exif(9)), "ok"),
        "exif-garbage.jpg": (_after_soi(jpeg, _segment(0xE1, b"Exif\0\0" + b"\xde\xad\xbe\xef" * 300)), "ok"),
        "exif-ifd-loop.jpg": (_after_soi(jpeg, _segment(0xE1, b"Exif\0\0II*\0\x08\0\0\0\x01\0\x12\x01\x03\0\x01\0\0\0"
                                                         b"\x06\0\0\0\x08\0\0\0")), "ok"),
        "exif-huge-64k.jpg": (_after_soi(jpeg, _segment(0xE1, b"Exif\0\0" + _exif(1) + b"\0" * 65000)), "ok"),
        "icc-huge-split.jpg": (_save(rgb, "JPEG", icc_profile=b"\x00" * 600_000), "ok"),
        "icc-broken-chunks.jpg": (_after_soi(jpeg, _segment(0xE2, icc_huge + b"\x05\x09" + b"x" * 100)), "ok"),
        "xmp-billion-laughs.jpg": (_after_soi(jpeg, _segment(0xE1, b"http://ns.adobe.com/xap/1.0/\0" + _laughs())), "ok"),
        "comment-flood.jpg": (_after_soi(jpeg, *[_segment(0xFE, b"c")] * 1500), "ok"),
        "segment-flood.jpg": (_after_soi(jpeg, *[_segment(0xFE, b"")] * 5000), "refused"),
        "many-scans.jpg": (_many_scan_jpeg(5000), "refused"),
        "arithmetic-sof9.jpg": (jpeg[:sof0] + b"\xff\xc9" + jpeg[sof0 + 2:], "either"),
        "lossless-sof3.jpg": (jpeg[:sof0] + b"\xff\xc3" + jpeg[sof0 + 2:], "either"),
        "cmyk-adobe.jpg": (cmyk_jpeg, "ok"),
        "ycck-adobe.jpg": (ycck_jpeg, "ok"),
        "grey.jpg": (_save(rgb.convert("L"), "JPEG"), "ok"),
        "sof-65535x65535.jpg": (jpeg[:sof0 + 5] + b"\xff\xff\xff\xff" + jpeg[sof0 + 9:], "refused"),
        "sof-zero-height.jpg": (jpeg[:sof0 + 5] + b"\x00\x00" + jpeg[sof0 + 7:], "either"),
        "no-eoi.jpg": (jpeg[:-2], "either"),
        "truncated-half.jpg": (jpeg[: len(jpeg) // 2], "either"),
        "trailing-garbage.jpg": (jpeg + b"\0garbage" * 100, "ok"),
        "mpo-two-frames.jpg": (_save(rgb, "MPO", save_all=True, append_images=[_picture(4)]), "ok"),
        # ---- PNG
        "grey-16bit.png": (_save(grey16, "PNG"), "ok"),
        "rgb-16bit.png": (_png_raw(16, 8, 16, 2, b"".join(b"\0" + bytes(range(96)) for _ in range(8))), "ok"),
        "palette-trns.png": (_save(palette, "PNG"), "ok"),
        "grey-alpha.png": (_save(rgb.convert("LA"), "PNG"), "ok"),
        "one-bit.png": (_save(rgb.convert("1"), "PNG"), "ok"),
        "unknown-chunks.png": (_png_with(png, _chunk(b"quIR", b"hello"), _chunk(b"prVt", b"\0" * 5000)), "ok"),
        "ztxt-bomb.png": (_png_with(png, _chunk(b"zTXt", b"k\0\0" + zlib.compress(b"\0" * 50_000_000, 9))), "either"),
        "itxt-huge.png": (_png_with(png, _chunk(b"iTXt", b"k\0\0\0\0\0" + b"x" * 2_000_000)), "either"),
        "bad-crc-ancillary.png": (_png_with(png, _chunk(b"tEXt", b"a\0b")[:-4] + b"\0\0\0\0"), "either"),
        "chunk-flood.png": (_png_with(png, *[_chunk(b"tEXt", b"")] * 110_000), "refused"),
        "apng.png": (_save(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50), "ok"),
        "strip-1x100000.png": (_png_raw(1, 100_000, 8, 0, b"\0\x80" * 100_000), "ok"),
        "strip-200000x1.png": (_png_raw(200_000, 1, 8, 0, b"\0" + b"\x80" * 200_000), "ok"),
        "idat-after-iend.png": (png + _chunk(b"IDAT", b"junk"), "either"),
        "header-30000x30000.png": (_png_raw(30000, 30000, 8, 2, b"\0" * 16)[:60], "refused"),
        # ---- GIF, WebP
        "gif-3000-frames.gif": (_save(many_gif[0], "GIF", save_all=True, append_images=many_gif[1:], duration=10), "ok"),
        "gif-no-trailer.gif": (_save(frames[0], "GIF")[:-1], "either"),
        "webp-animated.webp": (_save(frames[0], "WEBP", save_all=True, append_images=frames[1:], duration=50), "ok"),
        "webp-lossless-alpha.webp": (_save(rgb.convert("RGBA"), "WEBP", lossless=True), "ok"),
        "webp-riff-garbage.webp": (b"RIFF\x20\0\0\0WEBPVP8 " + b"\xff" * 24, "either"),
        # ---- TIFF
        "tiff-100-pages.tif": (_tiff([_picture(i, (16, 16)) for i in range(100)]), "ok"),
        "tiff-lzw.tif": (_save(rgb, "TIFF", compression="tiff_lzw"), "ok"),
        "tiff-deflate.tif": (_save(rgb, "TIFF", compression="tiff_adobe_deflate"), "ok"),
        "tiff-packbits.tif": (_save(rgb, "TIFF", compression="packbits"), "ok"),
        "tiff-jpeg.tif": (_save(rgb, "TIFF", compression="jpeg"), "ok"),
        "tiff-group4.tif": (_save(rgb.convert("1"), "TIFF", compression="group4"), "ok"),
        "tiff-float32.tif": (_save(Image.fromarray(np.linspace(0, 1, 64 * 48, dtype=np.float32).reshape(48, 64)), "TIFF"), "ok"),
        "tiff-cmyk.tif": (_save(rgb.convert("CMYK"), "TIFF"), "ok"),
        "tiff-big-endian.tif": (_tiff([rgb], tiffinfo=TiffImagePlugin.ImageFileDirectory_v2(prefix=b"MM")), "either"),
        "tiff-ifd-past-end.tif": (b"II*\0\xff\xff\xff\x00" + b"\0" * 64, "either"),
        # ---- BMP
        "bmp-rle8.bmp": (_save(palette.convert("RGB").quantize(16), "BMP"), "ok"),
        "bmp-header-size-lie.bmp": (_patch(bmp, 14, struct.pack("<I", 9999)), "either"),
        "bmp-zero-bpp.bmp": (_patch(bmp, 28, b"\0\0"), "either"),
        "bmp-offset-past-end.bmp": (_patch(bmp, 10, struct.pack("<I", 10**8)), "either"),
        "bmp-top-down.bmp": (_patch(bmp, 22, struct.pack("<i", -48)), "ok"),
        # ---- first bytes that lie
        "png-magic-jpeg-body.png": (b"\x89PNG\r\n\x1a\n" + jpeg, "either"),
        "jpeg-magic-png-body.jpg": (b"\xff\xd8\xff" + png, "either"),
        "gif-magic-text.gif": (b"GIF89a this is not a picture at all", "either"),
        "bm-text.bmp": (b"BMW cars are not bitmaps\n", "either"),
        "tiff-magic-eps.tif": (b"II*\0" + b"%!PS-Adobe-3.0 EPSF-3.0\n", "either"),
        "png-named-jpg.jpg": (png, "ok"),
        "svg-named-png.png": (b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="9" height="9"/></svg>', "refused"),
        "html-named-gif.gif": (b"<!doctype html><p>hello</p>", "refused"),
        # ---- outside the allowlist
        "loop.eps": (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 1 1\n{ } loop\n%%EOF\n", "refused"),
        "preview.eps": (b"\xc5\xd0\xd3\xc6" + struct.pack("<IIIIII", 30, 10, 0, 0, 0, 0) + b"\xff\xff" + b"%!PS", "refused"),
        "layers.psd": (_psd(), "refused"),
        "page.pdf": (_save(rgb, "PDF"), "refused"),
        "icon.ico": (_save(rgb, "ICO"), "refused"),
        "texture.dds": (_save(rgb.convert("RGBA"), "DDS"), "refused"),
        "targa.tga": (_save(rgb, "TGA"), "refused"),
        "picture.jp2": (_save(rgb, "JPEG2000"), "refused"),
        "codestream.j2k": (_save(rgb, "JPEG2000", no_jp2=True), "refused"),
        "sky.fits": (_fits(), "refused"),
        "texture.blp": (_save(rgb.convert("P"), "BLP"), "refused"),
        "picture.avif": (_save(rgb, "AVIF"), "refused"),
        "bigtiff.tif": (b"II+\0\x08\0\0\0\x10\0\0\0\0\0\0\0" + b"\0" * 32, "refused"),
        "picture.qoi": (_save(rgb, "QOI"), "refused"),
        "picture.pcx": (_save(rgb, "PCX"), "refused"),
        "picture.ppm": (_save(rgb, "PPM"), "refused"),
        "photo.heic": (b"\0\0\0\x18ftypheic\0\0\0\0mif1heic" + b"\0" * 64, "refused"),
        "drawing.svg": (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>', "refused"),
        "empty.jpg": (b"", "refused"),
    }
