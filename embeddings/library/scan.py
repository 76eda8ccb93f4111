"""One scan of a library: walk its folder, compare with what the database knows, and apply the
difference. Files whose size and mtime are unchanged are never opened. The rest are read, hashed,
checked by the upload policy and thumbnailed in a pool (processes when there are many: the work
per small file is mostly Python, which threads would run one at a time), and the results are
committed a chunk at a time: an interrupted scan keeps what it did, and the next one picks up
from there."""
from __future__ import annotations

import functools
import hashlib
import multiprocessing
import os
import socket
import stat
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from embeddings.files import image_policy, originals, previews
from embeddings.files.photo_facts import read_facts
from embeddings.library.reconcile import Reconciler
from embeddings.models import Image

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".jpe", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff"}
CHUNK = 256  # files per transaction
PROCESSES_FROM = 500  # files to read from which a process pool pays for its start


class Refused(Exception):
    """The root is missing, unreadable or suddenly empty: nothing was changed."""


@dataclass
class FileReading:
    """What a pool thread learned about one file (no database access happens in the pool)."""

    path: str
    size: int
    mtime_ns: int
    sha256: str = ""
    info: image_policy.Inspected | None = None
    facts: dict | None = None
    thumbnail: str = ""  # storage name of the new thumbnail
    error: str = ""


def walk(root: str) -> tuple[dict[str, tuple[int, int]], list[tuple[str, str]]]:
    """Relative POSIX path -> (size, mtime_ns) of every image-named regular file under root, and
    (path, reason) for every file skipped on the way. Symlinks leaving the root are not followed;
    symlinked folders are not entered (their files are scanned where they lie, or not at all)."""
    real_root = os.path.realpath(root)
    files, skipped, stack = {}, [], [""]
    while stack:
        rel = stack.pop()
        try:
            entries = os.scandir(os.path.join(root, rel) if rel else root)
        except OSError as exc:
            if not rel:
                raise Refused(f"the folder {root} cannot be read ({exc.strerror}): nothing was removed") from None
            skipped.append((rel + "/", f"the folder cannot be read ({exc.strerror})"))
            continue
        with entries:
            for e in entries:
                path = f"{rel}/{e.name}" if rel else e.name
                try:
                    path.encode("utf-8")
                except UnicodeEncodeError:
                    skipped.append((path.encode("utf-8", "replace").decode(), "the file name is not valid UTF-8"))
                    continue
                try:
                    if e.is_symlink():
                        target = os.path.realpath(e.path)
                        if not originals.inside(real_root, target):
                            skipped.append((path, "a symlink that leads out of the library: not followed"))
                            continue
                        if os.path.isdir(target):
                            skipped.append((path, "a symlink to a folder: not entered (its files are scanned where they lie)"))
                            continue
                        if not os.path.exists(target):
                            skipped.append((path, "a broken symlink"))
                            continue
                    elif e.is_dir(follow_symlinks=False):
                        stack.append(path)
                        continue
                    if os.path.splitext(e.name)[1].lower() not in IMAGE_SUFFIXES:
                        skipped.append((path, "not an image (by its name)"))
                        continue
                    st = e.stat()
                    if not stat.S_ISREG(st.st_mode):
                        skipped.append((path, "not a regular file"))
                        continue
                    files[path] = (st.st_size, st.st_mtime_ns)
                except OSError as exc:
                    skipped.append((path, f"cannot be read ({exc.strerror})"))
    return files, skipped


def _thumbnail_name() -> str:
    return Image.thumbnail.field.generate_filename(None, f"{uuid.uuid4().hex}.jpg")


def read_one(root: str, path: str, size: int, mtime_ns: int, skip_inspect: frozenset | set) -> FileReading:
    """FileReading, hash and (unless its content is already known) check one file; make its thumbnail."""
    r = FileReading(path, size, mtime_ns)
    try:
        target = os.path.realpath(os.path.join(root, path))
        if not originals.inside(root, target):  # replaced by an escaping symlink since the walk
            raise originals.NotInLibrary("a symlink that leads out of the library")
        image_policy.check_size(size)
        data = originals.read_regular(target)
        r.size = len(data)
        r.sha256 = hashlib.sha256(data).hexdigest()
        if r.sha256 in skip_inspect:  # the same bytes as a known image: a move or a touch
            return r
        r.info = image_policy.inspect_image(data)
        r.facts = read_facts(data, r.info.format)
        r.thumbnail = default_storage.save(_thumbnail_name(), ContentFile(r.info.thumbnail))
        previews.save(r.sha256, r.info.preview)
        r.info.thumbnail = r.info.preview = b""  # written; keep the result small
    except image_policy.RejectedImage as exc:
        r.error = str(exc)
    except OSError as exc:
        r.error = f"cannot be read ({exc.strerror or exc})"
    return r


# What every pool task of one scan shares, by scan: forked processes inherit it instead of having
# the (possibly 100,000) known hashes pickled into every batch of tasks.
_SHARED: dict[str, tuple[str, frozenset]] = {}


def _read_entry(scan_id: str, entry) -> FileReading:
    root, skip_inspect = _SHARED[scan_id]
    return read_one(root, *entry, skip_inspect)


def _pool(n: int):
    """Processes for many files, forked so that they share the settings (and the storage) as they
    are; they only read files and write thumbnails, never the database. Threads for a few files."""
    workers = max(2, os.cpu_count() or 2)
    if n >= PROCESSES_FROM and "fork" in multiprocessing.get_all_start_methods():
        return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("fork"))
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="clipsearch-scan")


def scan(library, progress=None, tick=None) -> dict:
    """Bring the database in line with the library's folder; returns the report.

    `progress(total)` may return a bar (update(n), close()) for the files that must be read;
    `tick()` is called after every chunk (the caller renews its scan lock there)."""
    root = os.path.realpath(library.root)
    if not os.path.isdir(root):
        what = "does not exist" if not os.path.lexists(library.root) else "is not a folder"
        raise Refused(f"the folder {library.root} {what} on {socket.gethostname()} (is the disk connected, is it "
                      "mounted on this worker host?): nothing was removed")
    files, skipped = walk(root)
    rec = Reconciler(library, files, skipped, reread=lambda path, size, mtime: read_one(root, path, size, mtime, ()))
    if not files and rec.known:
        raise Refused(f"the folder {library.root} holds no images while the library had {len(rec.known)}: "
                      "nothing was removed (is the disk connected?)")
    todo = rec.to_read()
    bar = progress(len(todo)) if progress else None
    scan_id = uuid.uuid4().hex
    _SHARED[scan_id] = (root, rec.skip_inspect)
    pool = _pool(len(todo))
    try:
        results = pool.map(functools.partial(_read_entry, scan_id), [(p, *files[p]) for p in todo],
                           chunksize=32 if isinstance(pool, ProcessPoolExecutor) else 1)
        chunk = []
        for r in results:
            chunk.append(r)
            if len(chunk) == CHUNK:
                rec.apply(chunk)
                if bar:
                    bar.update(len(chunk))
                if tick:
                    tick()
                chunk = []
        if chunk:
            rec.apply(chunk)
            if bar:
                bar.update(len(chunk))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        del _SHARED[scan_id]
        if bar:
            bar.close()
    rec.remove_gone()
    rec.retry_unreadable()
    return rec.report()
