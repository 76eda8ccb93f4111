"""Preparing one file of a folder import, in a pool process: read it, hash it, check it through the
upload policy, read its photo facts, and store it and its thumbnail. No database access happens
here: the importing process commits what its pool prepared, a chunk at a time (services.import_paths).
The work per file is mostly decoding and Python, which threads would run one at a time."""
from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from embeddings.files import image_policy, previews
from embeddings.files.originals import read_regular
from embeddings.files.photo_facts import read_facts
from embeddings.models import Image


@dataclass
class Prepared:
    path: str
    sha256: str = ""
    size: int = 0
    format: str = ""
    width: int = 0
    height: int = 0
    facts: dict | None = None
    file: str = ""  # storage names of the stored copy and its thumbnail
    thumbnail: str = ""
    known: bool = False  # the same bytes were stored before the import began: not stored again
    error: str = ""


# What every task of one import shares, by import: forked pool processes inherit it instead of having
# the known hashes pickled into every batch of tasks.
SHARED: dict[str, frozenset] = {}


def prepare(import_id: str, path: str) -> Prepared:
    p = Prepared(path)
    try:
        image_policy.check_size(os.stat(path).st_size)
        data = read_regular(path)
        p.size, p.sha256 = len(data), hashlib.sha256(data).hexdigest()
        if p.sha256 in SHARED.get(import_id, ()):
            p.known = True
            return p
        info = image_policy.inspect_image(data)
        p.format, p.width, p.height = info.format, info.width, info.height
        p.facts = read_facts(data, info.format)
        stem = uuid.uuid4().hex
        p.file = default_storage.save(Image.file.field.generate_filename(
            None, f"{stem}.{image_policy.EXTENSIONS[info.format]}"), ContentFile(data))
        p.thumbnail = default_storage.save(Image.thumbnail.field.generate_filename(None, f"{stem}.jpg"),
                                           ContentFile(info.thumbnail))
        previews.save(p.sha256, info.preview)
    except image_policy.RejectedImage as exc:
        p.error = str(exc)
    except OSError as exc:
        p.error = f"cannot be read ({exc.strerror or exc})"
    return p
