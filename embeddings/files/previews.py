"""The import's decoded picture, handed to the worker so that a large photo is decoded once.

A 12 MP JPEG costs tens of ms to decode even at the 1/8 DCT scale (~43 ms on the AVX2 kind); the
import decodes it for the thumbnail, and the worker decoded it again for CLIP. The import now also
writes that picture (upright, at the scale it decoded, JPEG q92: ~17 KB for the 500x375 picture of a
bench 12 MP photo) to a local folder, named by
the file's SHA-256; the worker encodes it instead of the original, and removes it once the image is
handled. Where none is found (another host's worker, a re-encode, a model switch, a lost file), the
worker decodes the original as before: a preview only ever saves time.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from django.conf import settings

MIN_PIXELS = 2_000_000  # below this a decode costs a few ms: the hand-off would cost as much as it saves
MAX_SIDE = 1024  # CLIP needs 224 px and OCR's first look 640: a PNG's full-size decode is shrunk to this
QUALITY = 92
_SHA = re.compile(r"^[0-9a-f]{64}$")


def folder() -> Path:
    return Path(settings.PREVIEW_DIR)


def _path(sha256: str) -> Path | None:
    return folder() / f"{sha256}.jpg" if _SHA.match(sha256 or "") else None


def save(sha256: str, data: bytes | None) -> None:
    """Write a preview (written whole, then renamed: a worker never reads half of one)."""
    path = _path(sha256)
    if not data or path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_suffix(f".{os.getpid()}.part")
    part.write_bytes(data)
    os.replace(part, path)


def read(sha256: str) -> bytes | None:
    path = _path(sha256)
    try:
        return path.read_bytes() if path else None
    except OSError:  # none written here, or already handled
        return None


def drop(sha256s) -> None:
    for sha in sha256s:
        path = _path(sha)
        if path:
            path.unlink(missing_ok=True)
