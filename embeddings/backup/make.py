"""`manage.py backup DEST`: one consistent copy of the database rows (vectors included) and the
media files they name, from whichever database and storage, while the app keeps running.

Consistent: everything is read inside one read-only snapshot of the database (REPEATABLE READ on
PostgreSQL; a deferred read transaction on SQLite's write-ahead log), so rows that workers commit
meanwhile are either wholly in the backup or wholly not. An upload's files are written before its
row commits, so every row of the snapshot names files that exist; an image deleted while the
backup copies its files is left out of it, with every row that refers to it.
"""
from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.core import serializers
from django.core.files.storage import default_storage
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from embeddings.backup import archive
from embeddings.models import Image


@contextmanager
def snapshot():
    """Every read inside sees one moment of the database, without holding writers up."""
    conn = connections[DEFAULT_DB_ALIAS]
    if conn.vendor == "sqlite":
        # The settings begin SQLite transactions IMMEDIATE (a write lock, which would stop the
        # workers for the whole backup); a deferred one that has read once is a WAL snapshot.
        conn.ensure_connection()
        if conn.in_atomic_block:
            raise RuntimeError("a backup needs its own transaction")
        with conn.cursor() as cur:
            cur.execute("BEGIN DEFERRED")
            cur.execute(f"SELECT COUNT(*) FROM {Image._meta.db_table}")  # the first read fixes the snapshot
        try:
            yield
        finally:
            with conn.cursor() as cur:
                cur.execute("COMMIT")
    else:
        with transaction.atomic(), conn.cursor() as cur:
            cur.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield


def copy_media(root: Path, name: str) -> dict | None:
    """One stored file into the backup, hashed as it is copied; None when it is gone."""
    target = archive.media_path(root, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest, size = hashlib.sha256(), 0
    try:
        with default_storage.open(name, "rb") as src, open(target, "wb") as out:
            while block := src.read(archive.CHUNK):
                digest.update(block)
                out.write(block)
                size += len(block)
    except FileNotFoundError:
        target.unlink(missing_ok=True)
        return None
    return {"bytes": size, "sha256": digest.hexdigest()}


def references_to_image(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if f.is_relation and f.related_model is Image]


def backup(dest: str | Path, progress=None, force: bool = False) -> dict:
    """Write the backup into `dest` (a new or empty folder; any folder with --force). Returns the manifest."""
    root = Path(dest)
    if root.exists() and (not root.is_dir() or (any(root.iterdir()) and not force)):
        raise archive.BadBackup(f"{root} exists and is not an empty folder; choose another or use --force")
    (root / "db").mkdir(parents=True, exist_ok=True)
    (root / archive.MANIFEST).unlink(missing_ok=True)
    started = time.time()
    media, gone = {}, set()
    with snapshot():
        images = Image.objects.all()
        names = [(pk, n) for pk, f, t in images.values_list("pk", "file", "thumbnail") for n in (f, t) if n]
        bar = progress(len(names), "copying media") if progress else None
        for pk, name in names:
            facts = copy_media(root, name)
            if facts is None:
                gone.add(pk)  # deleted while we copy: the image leaves the backup whole
            else:
                media[name] = facts
            bar and bar.update(1)
        bar and bar.close()
        tables = {}
        models = archive.included_models()
        bar = progress(len(models), "writing rows") if progress else None
        for model in models:
            rows = model._base_manager.order_by("pk")
            if gone:
                if model is Image:
                    rows = rows.exclude(pk__in=gone)
                for field in references_to_image(model):
                    rows = rows.exclude(**{f"{field}__in": gone})
            path = root / "db" / f"{archive.label(model)}.jsonl"
            with open(path, "w", encoding="utf-8") as out:
                serializers.serialize("jsonl", rows.iterator(chunk_size=2000), stream=out,
                                      use_natural_foreign_keys=True)
            tables[archive.label(model)] = {"rows": rows.count(), "bytes": path.stat().st_size,
                                            "sha256": archive.sha256_of(path)}
            bar and bar.update(1)
        bar and bar.close()
    for name in [n for pk, n in names if pk in gone and n in media]:
        archive.media_path(root, name).unlink(missing_ok=True)
        del media[name]
    manifest = {"format": archive.FORMAT, "version": archive.VERSION, "created_at": started,
                "database": connections[DEFAULT_DB_ALIAS].vendor, "model": settings.MODEL_KEY,
                "storage": settings.STORAGES["default"]["BACKEND"],
                "tables": tables, "media": media, "left_out_deleted": sorted(gone)}
    archive.write_manifest(root, manifest)
    return manifest
