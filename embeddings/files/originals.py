"""Reading a library image's original where it lies: only inside its library's root (no `..`, no
symlink that leads out), only a regular file, and only after the upload policy's size and format
checks. The worker (to encode) and the original-file view (to serve) both read through here."""
from __future__ import annotations

import io
import os
import socket
import stat
from pathlib import Path, PurePosixPath

from django.conf import settings
from PIL import Image as PILImage

from embeddings.files import image_policy
from embeddings.models import Image

CONTENT_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp",
                 "BMP": "image/bmp", "TIFF": "image/tiff"}


class NotInLibrary(OSError):
    """The path does not name a regular file inside the library root (any more)."""


def inside(root: str, target: str) -> bool:
    """Whether `target` (resolved) lies inside `root` (resolved)."""
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def original_path(image: Image) -> Path:
    """The resolved path of a library image's original, checked to lie inside its root."""
    if not image.library_id or not image.path:
        raise NotInLibrary("not a library image")
    rel = PurePosixPath(image.path)
    if rel.is_absolute() or ".." in rel.parts:
        raise NotInLibrary("the stored path leaves the library")
    root = os.path.realpath(image.library.root)
    if not os.path.isdir(root):  # not mounted here: say where, rather than "no such file"
        raise NotInLibrary(f"the library folder {image.library.root} is not visible on this host ({socket.gethostname()}); "
                           "every worker and web host must mount it at the same path")
    target = os.path.realpath(os.path.join(root, *rel.parts))
    if not inside(root, target):
        raise NotInLibrary("the file is a symlink that leads out of the library")
    return Path(target)


def read_regular(path: str | os.PathLike, max_bytes: int | None = None) -> bytes:
    """A regular file's bytes. Non-blocking open, so a FIFO named like a photo cannot hang us;
    the size is checked on the open file before anything is read."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise NotInLibrary("not a regular file")
        image_policy.check_size(st.st_size)
        return f.read(max_bytes) if max_bytes else f.read()


def check_present(image: Image) -> None:
    """What a read of a library original refuses first (gone, moved out, not a regular file, too
    large), without reading it: for a worker that encodes the import's preview instead."""
    st = os.stat(original_path(image))
    if not stat.S_ISREG(st.st_mode):
        raise NotInLibrary("not a regular file")
    image_policy.check_size(st.st_size)


def read_original(image: Image) -> tuple[bytes, str]:
    """A library image's bytes and their sniffed format, or OSError / RejectedImage saying why."""
    data = read_regular(original_path(image))
    return data, image_policy.check(data)


def stored_bytes(image: Image) -> bytes:
    """The bytes of any stored image: an upload's file from the media storage, or a library
    original read where it lies (inside its root, after the upload policy)."""
    if image.library_id:
        return read_original(image)[0]
    with image.file.open("rb") as f:
        return f.read()


def for_serving(image: Image) -> tuple[bytes, str]:
    """A library original to send to a browser: its bytes and the content type of the format it
    was sniffed as, after the allowlist and the pixel limit (read from the header, no decode)."""
    data, fmt = read_original(image)
    try:
        with PILImage.open(io.BytesIO(data), formats=[fmt]) as im:
            width, height = im.size
    except Exception as exc:  # Pillow raises many types for damaged headers and bombs
        raise image_policy.RejectedImage(f"not a readable {fmt} image ({exc})") from None
    if width * height > settings.MAX_IMAGE_PIXELS:
        raise image_policy.RejectedImage(f"the image is {width}x{height}: more than {settings.MAX_IMAGE_PIXELS} pixels")
    return data, CONTENT_TYPES[fmt]
