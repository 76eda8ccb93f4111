"""What a backup folder holds, and the checks that tell a good one from a wrong or damaged one.

    DEST/manifest.json        written last: a folder without it is an unfinished backup
    DEST/db/<app.model>.jsonl the rows of each table (Django's serialisation; vectors as base64)
    DEST/media/<name>         every upload and thumbnail the rows name, under its storage name

The manifest lists each table file with its row count and sha256, and each media file with its
size and sha256, so a restore checks everything before it changes anything.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path, PurePosixPath

from django.apps import apps
from django.core import serializers

FORMAT = "clipsearch-backup"
VERSION = 1
MANIFEST = "manifest.json"
CHUNK = 1 << 20


class BadBackup(Exception):
    """The source is not a clipsearch backup, is unfinished, or is damaged; the message says which."""


def included_models() -> list:
    """The tables a backup holds, in an order that loads: users (their natural keys are referred
    to), then the app's tables. Not: content types and permissions (made by `migrate`, referred to
    by natural key), sessions and admin log entries (transient), and tombstones (they only tell
    running processes of deletions; a restored install builds its index afresh)."""
    wanted = [apps.get_model("auth", "Group"), apps.get_model("auth", "User")]
    wanted += [m for m in apps.get_app_config("embeddings").get_models() if m._meta.model_name != "tombstone"]
    return serializers.sort_dependencies([(None, wanted)], allow_cycles=True)


def label(model) -> str:
    return model._meta.label_lower


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def media_path(root: Path, name: str) -> Path:
    """Where a storage name lies in the backup; a name that would leave the folder is refused."""
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or ".." in rel.parts:
        raise BadBackup(f"a media name leaves the backup folder: {name!r}")
    return root / "media" / Path(*rel.parts)


def write_manifest(root: Path, manifest: dict) -> None:
    tmp = root / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    os.replace(tmp, root / MANIFEST)


def read_manifest(root: Path) -> dict:
    if not root.is_dir():
        raise BadBackup(f"{root} is not a folder")
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except FileNotFoundError:
        raise BadBackup(f"{root} has no {MANIFEST}: not a clipsearch backup, or one that did not finish") from None
    except (OSError, ValueError) as exc:
        raise BadBackup(f"{root / MANIFEST} cannot be read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BadBackup(f"{root / MANIFEST} is not a clipsearch backup's manifest")
    if manifest.get("version") != VERSION:
        raise BadBackup(f"backup format version {manifest.get('version')!r}; this clipsearch reads version {VERSION}")
    return manifest


def verify(root: Path, manifest: dict, progress=None) -> None:
    """Every file the manifest names is there with its size and sha256; else BadBackup naming it."""
    tables, media = manifest.get("tables", {}), manifest.get("media", {})
    bar = progress(len(tables) + len(media), "checking the backup") if progress else None
    try:
        for name, facts in tables.items():
            check(root / "db" / f"{name}.jsonl", facts)
            bar and bar.update(1)
        for name, facts in media.items():
            check(media_path(root, name), facts)
            bar and bar.update(1)
    finally:
        bar and bar.close()


def check(path: Path, facts: dict) -> None:
    try:
        size = path.stat().st_size
    except OSError:
        raise BadBackup(f"{path} is missing from the backup") from None
    if size != facts.get("bytes") or sha256_of(path) != facts.get("sha256"):
        raise BadBackup(f"{path} is damaged (its size or sha256 differs from the manifest)")
