"""A perceptual hash of an image's thumbnail: 64 bits that stay close when the picture is
re-encoded, resized, recoloured a little, cropped a little, or shown inside flat bars (a
screenshot, a letterbox), and move far apart for different pictures.

The hash is pHash's idea in a few lines of numpy (measured against the `imagehash` library in
docs/DUPLICATES.md): grey, flat edge bars trimmed, 32x32, 2-D DCT, the 8x8 lowest frequencies
compared to their median."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image as PILImage

SIDE = 32  # the DCT's input side: pHash's 4x oversampling of the 8x8 kept frequencies
KEEP = 8
# A row or column at an edge whose grey values vary less than this (std, 0-255) is a flat bar:
# trimmed, so that a screenshot or a letterboxed copy hashes like the picture inside it.
FLAT_STD = 4.0
# Grey levels (95th percentile of a line) from a bar's colour: within BAR_TIGHT a line is bar; the
# picture beside it stands beyond BAR_FAR (JPEG ringing may blur the step over a line or two).
BAR_TIGHT, BAR_FAR = 4.0, 12.0


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_DCT = _dct_matrix(SIDE)
_WEIGHTS = (1 << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def _bar_depth(lines: np.ndarray) -> int:
    """How many of these lines (rows or columns, the edge's first) belong to a flat bar. A bar is
    one colour (every line within BAR_TIGHT of the first line's, almost everywhere) and ends
    abruptly: within two lines of its end the picture stands BAR_FAR from its colour. Judged against
    the bar's colour, not line by line: a picture's low-contrast rows (a soft gradient) are flat
    too, but drift away from it gradually (the per-line flatness test cut screenshots there)."""
    if lines[0].std() >= FLAT_STD:
        return 0
    away = np.percentile(np.abs(lines - np.median(lines[0])), 95, axis=1)
    beyond = away > BAR_TIGHT
    if not beyond.any():
        return len(lines)
    depth = int(beyond.argmax())
    return depth if (away[depth:depth + 3] > BAR_FAR).any() else 0


def flat_edges(grey: np.ndarray) -> tuple[int, int, int, int]:
    """top, bottom, left, right of the picture inside flat bars along its edges (the whole
    picture when it is flat, or when trimming would leave less than half a side)."""
    h, w = grey.shape
    top, bottom = _bar_depth(grey), h - _bar_depth(grey[::-1])
    left, right = _bar_depth(grey.T), w - _bar_depth(grey.T[::-1])
    if bottom - top < h // 2 or right - left < w // 2:
        return 0, h, 0, w
    return top, bottom, left, right


def trim_flat_edges(grey: np.ndarray) -> np.ndarray:
    top, bottom, left, right = flat_edges(grey)
    return grey[top:bottom, left:right]


def to_signed(h: int) -> int:
    return h - (1 << 64) if h >= 1 << 63 else h


def to_bytes(hashes) -> np.ndarray:
    """Signed 64-bit hashes as rows of 8 bytes (faiss's binary vectors), big-endian."""
    return np.asarray(hashes, dtype=">i8").view(np.uint8).reshape(-1, 8)


def distance(a: int, b: int) -> int:
    return ((a ^ b) & ((1 << 64) - 1)).bit_count()


# The crops a copy may have lost: each side shortened by up to 10% (SPEC §15), shared between its
# two edges. Hashes of the picture cut at these 16 corners of that range (0 or 5% off each edge)
# lie within a few bits of any such copy's own hash, where the whole picture's hash may be 20 off.
CROP_GRID = tuple((left, top, right, bottom) for left in (0, .05) for top in (0, .05)
                  for right in (0, .05) for bottom in (0, .05))


# Where an image's hashes of the whole picture lie in its list: the whole as it is, and the
# picture inside flat bars (a screenshot's, a letterbox's; the same as the whole where none).
WHOLES = (0, len(CROP_GRID))


def picture_hashes(picture: PILImage.Image) -> tuple[int, list[int]]:
    """The whole picture's hash and the image's 17 hashes: its crop grid's 16 (the first is the
    whole picture), then the picture inside flat edge bars. Only that last one is trimmed: trimming
    every hash cut flat parts of ordinary pictures (a text's page, a soft gradient) differently in
    each copy and lost 5-20% of their recall (docs/DUPLICATES.md), while a screenshot needs it."""
    grey = picture.convert("L")
    grey.thumbnail((128, 128), PILImage.Resampling.BOX)
    arr = np.asarray(grey, dtype=np.float32)
    h, w = arr.shape
    hashes = [_hash_array(arr[int(t * h):h - int(b * h), int(left * w):w - int(r * w)]) for left, t, r, b in CROP_GRID]
    trimmed = trim_flat_edges(arr)
    hashes.append(hashes[0] if trimmed.shape == arr.shape else _hash_array(trimmed))
    return hashes[0], hashes


def _hash_array(arr: np.ndarray) -> int:
    small = PILImage.fromarray(arr.astype(np.uint8)).resize((SIDE, SIDE), PILImage.Resampling.BOX)
    coeffs = _DCT @ np.asarray(small, dtype=np.float32) @ _DCT.T
    low = coeffs[:KEEP, :KEEP].ravel()
    bits = low > np.median(low[1:])  # the DC term (overall brightness) is left out of the median
    return to_signed(int((bits.astype(np.uint64) * _WEIGHTS).sum()))


def _decoded(data: bytes) -> PILImage.Image:
    with PILImage.open(io.BytesIO(data)) as im:
        im.draft("RGB", (128, 128))  # JPEG: decode at reduced scale; the hash looks at 32x32
        im.load()
        return im.copy()  # a closed image can no longer be converted


def hashes_of_bytes(data: bytes) -> tuple[int, list[int]]:
    """The hashes of an encoded image (a thumbnail: small, already upright)."""
    return picture_hashes(_decoded(data))


def colour_signature(data: bytes) -> list[float]:
    """The picture's colours at 4x4 (48 numbers, 0-255), flat edge bars trimmed like the hash:
    grey hashes of two gradients can collide; their colours rarely do."""
    return _colours(_decoded(data))


def evidence_of_bytes(data: bytes) -> tuple[int, list[int], list[float]]:
    """hashes_of_bytes and colour_signature from one decode (the worker makes both for each new image)."""
    picture = _decoded(data)
    full, grid = picture_hashes(picture)
    return full, grid, _colours(picture)


def _colours(picture: PILImage.Image) -> list[float]:
    rgb = picture.convert("RGB")
    rgb.thumbnail((64, 64), PILImage.Resampling.BOX)
    arr = np.asarray(rgb, dtype=np.float32)
    top, bottom, left, right = flat_edges(arr.mean(axis=2))
    small = PILImage.fromarray(arr[top:bottom, left:right].astype(np.uint8)).resize((4, 4), PILImage.Resampling.BOX)
    return np.asarray(small, dtype=np.float32).ravel().tolist()
