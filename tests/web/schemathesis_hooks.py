"""Loaded by schemathesis (SCHEMATHESIS_HOOKS) in tests/web/test_schema.py: real pictures for the
image types the schema's multipart encoding declares, so that schema-valid requests carry images
the upload policy takes. Each is a small random picture (its own bytes, so uploads are new, not
duplicates, unless hypothesis repeats one: then the documented 409)."""
import io

import numpy as np
import schemathesis
from hypothesis import strategies as st
from PIL import Image

FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG", "image/gif": "GIF", "image/webp": "WEBP", "image/bmp": "BMP",
           "image/tiff": "TIFF"}


def _encode(fmt: str, width: int, height: int, seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt)
    return buf.getvalue()


def pictures(fmt: str) -> st.SearchStrategy[bytes]:
    return st.builds(_encode, st.just(fmt), st.integers(1, 48), st.integers(1, 48), st.integers(0, 2**32 - 1))


for media_type, fmt in FORMATS.items():
    schemathesis.openapi.media_type(media_type, pictures(fmt))





@schemathesis.hook
def before_call(context, case, kwargs):
    """POST /api/images takes a list of files; schemathesis 4.32 sends the one file that an `encoding`
    media-type strategy gives such a list without a filename, and so not as a file (RFC 7578 names
    files by their filename; Django reads a part without one as a text field): name it, as every
    client that uploads a file does. The case itself is left as generated."""
    if case.operation.path != "/api/images":
        return
    parts = case.as_transport_kwargs().get("files")
    if isinstance(parts, list):
        kwargs["files"] = [(name, ("upload", *part[1:])) if name == "files" and part[0] is None and isinstance(part[1], bytes)
                           else (name, part) for name, part in parts]
