"""`manage.py restore SRC [--force]`: a backup back into this install, without encoding anything.

The whole source is checked first (manifest, every file's size and sha256), so a wrong or damaged
backup changes nothing. An install that already holds rows or media is left alone unless --force,
which empties it first. Rows go back with their ids in one transaction (raw inserts: the stored
dates stay as they were), the database's id sequences are moved past them, images that a worker
was encoding at backup time go back to pending, the media files go back under their names, and
this host's index file is built from the restored vectors (other hosts build theirs likewise).
"""
from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core import serializers
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.management.color import no_style
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from embeddings.backup import archive
from embeddings.index import build
from embeddings.models import Image

BATCH = 1000


class NotEmpty(Exception):
    """The install holds data; restoring over it needs --force."""


def media_in_use() -> bool:
    try:
        dirs, files = default_storage.listdir("")
    except FileNotFoundError:
        return False
    return bool(dirs or files)


def check_empty(models) -> None:
    held = [archive.label(m) for m in models if m._base_manager.exists()]
    if held:
        raise NotEmpty(f"this install already holds data ({', '.join(held)}); restore onto an empty one, or use "
                       "--force to replace everything in it")
    if media_in_use():
        raise NotEmpty("the media storage already holds files; restore onto an empty one, or use --force")


def empty_install(models) -> None:
    names = [n for f, t in Image.objects.values_list("file", "thumbnail") for n in (f, t) if n]
    with transaction.atomic():
        for model in reversed(models):
            model._base_manager.all().delete()
    for name in names:
        default_storage.delete(name)


def load_table(path: Path, model, alias: str) -> int:
    """Insert a table's rows as stored (raw: no auto_now dates, no signals), then its many-to-many links."""
    n, batch, links = 0, [], []
    fields = [f for f in model._meta.concrete_fields]

    def flush():
        if batch:
            model._base_manager.using(alias)._insert(batch, fields=fields, raw=True, using=alias)
            batch.clear()

    with open(path, encoding="utf-8") as f:
        for item in serializers.deserialize("jsonl", f, using=alias, handle_forward_references=False):
            if type(item.object) is not model:
                raise archive.BadBackup(f"{path} holds a {type(item.object).__name__} row")
            batch.append(item.object)
            if item.m2m_data:
                links.append((item.object, item.m2m_data))
            n += 1
            if len(batch) >= BATCH:
                flush()
    flush()
    for obj, m2m in links:
        for name, values in m2m.items():
            getattr(obj, name).set(values)
    return n


def restore(src: str | Path, progress=None, force: bool = False) -> dict:
    root = Path(src)
    manifest = archive.read_manifest(root)
    models = archive.included_models()
    known = {archive.label(m): m for m in models}
    unknown = set(manifest["tables"]) - set(known)
    if unknown:
        raise archive.BadBackup(f"the backup holds tables this clipsearch does not know: {sorted(unknown)}")
    archive.verify(root, manifest, progress)
    if force:
        empty_install(models)
    else:
        check_empty(models)
    alias = DEFAULT_DB_ALIAS
    conn = connections[alias]
    counts = {}
    bar = progress(len(manifest["tables"]), "restoring rows") if progress else None
    with transaction.atomic(using=alias):
        with conn.constraint_checks_disabled():
            for model in models:
                name = archive.label(model)
                if name in manifest["tables"]:
                    counts[name] = load_table(root / "db" / f"{name}.jsonl", model, alias)
                    if counts[name] != manifest["tables"][name]["rows"]:
                        raise archive.BadBackup(f"{name}: {counts[name]} rows, the manifest says "
                                                f"{manifest['tables'][name]['rows']}")
                bar and bar.update(1)
        conn.check_constraints(table_names=[m._meta.db_table for m in models])
        with conn.cursor() as cur:
            for sql in conn.ops.sequence_reset_sql(no_style(), models):
                cur.execute(sql)
        # A worker's claim does not survive into another install: those images are encoded again.
        Image.objects.filter(status=Image.Status.PROCESSING).update(status=Image.Status.PENDING, claim_token="",
                                                                    claimed_at=None)
    bar and bar.close()
    bar = progress(len(manifest["media"]), "restoring media") if progress else None
    for name in manifest["media"]:
        with open(archive.media_path(root, name), "rb") as f:
            if force:
                default_storage.delete(name)
            stored = default_storage.save(name, File(f, name=name))
        if stored != name:
            raise archive.BadBackup(f"the storage put {name} under another name ({stored})")
        bar and bar.update(1)
    bar and bar.close()
    built = None
    dim = build.dim_of(settings.MODEL_KEY)
    if dim is not None:
        built = build.build(settings.MODEL_KEY, dim, retrain=True, blocking=True)["n"]  # and tells web processes
    return {"rows": counts, "media": len(manifest["media"]), "indexed": built}
