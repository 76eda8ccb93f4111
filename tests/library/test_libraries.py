"""Libraries scanned in place with the real `manage.py library` command, the real worker, database
and Redis: a messy tree (every readable image searchable, nothing copied, each skip with its
reason), the exact difference between two scans, and a disconnected disk that removes nothing."""
import hashlib
import io
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command

from embeddings.models import Embedding, Image, Library
from embeddings.pipeline import ingest
from tests.bad_inputs import corpus
from tests.support import ROOT, db_env, run_worker

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def library_cmd(*args):
    """`manage.py library ...`, run in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("library", *args, stdout=out, stderr=err)
        rc = 0
    except SystemExit as exc:
        rc = exc.code
    return rc, out.getvalue(), err.getvalue()


def library_process(tmp_path, *args):
    """`manage.py library ...` as an operator runs it, in its own process (for its exit status)."""
    proc = subprocess.run([sys.executable, "manage.py", "library", *args], cwd=ROOT, env=db_env(tmp_path),
                          capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def add_and_scan(root, name="photos"):
    rc, out, err = library_cmd("add", str(root), "--name", name)
    assert rc == 0, err
    assert out.strip() == str(Library.objects.get(name=name).pk)  # the new id, alone
    rc, out, err = library_cmd("scan", name)
    assert rc == 0, err
    return out


def snapshot(root: Path) -> dict:
    """Every file under root: its bytes' hash and mtime (the app must change neither)."""
    return {str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in root.rglob("*") if p.is_file() and not p.is_symlink()}


def search_ids(client, k=200) -> set[int]:
    resp = client.get("/api/search", {"q": "a photo", "k": k, "cutoff": "none"})
    assert resp.status_code == 200, resp.content[:300]
    return {r["id"] for r in resp.json()["results"]}


def test_a_messy_tree_is_indexed_in_place(redis, demo_images, tmp_path, client):
    root, outside = tmp_path / "photos", tmp_path / "outside"
    good = {"a.jpg": 0, "Été 2021/plage é.jpg": 1, "Été 2021/日本 写真.jpg": 2, "deep/a/b/c d.jpg": 3, "locked.jpg": 4}
    for rel, i in good.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(demo_images[i][0])
    outside.mkdir()
    (outside / "x.jpg").write_bytes(demo_images[5][0])
    (root / "copies").mkdir()
    (root / "copies" / "again.jpg").write_bytes(demo_images[0][0])  # same bytes as a.jpg
    (root / "notes.txt").write_text("not a photo")
    (root / "fake.jpg").write_text("text named like a photo")
    (root / "huge.png").write_bytes(corpus()["bomb.png"][0])
    (root / "escape.jpg").symlink_to(outside / "x.jpg")
    (root / "outdir").symlink_to(outside)
    (root / "broken.jpg").symlink_to(root / "nowhere.jpg")
    os.mkfifo(root / "pipe.jpg")  # unreadable as a photo, even to root
    (root / "locked.jpg").chmod(0)
    # root reads a mode-000 file all the same: there, locked.jpg is an ordinary photo.
    locked_readable = os.access(root / "locked.jpg", os.R_OK)
    if not locked_readable:
        del good["locked.jpg"]
    before = snapshot(root)

    out = add_and_scan(root)
    expected_skips = {
        "copies/again.jpg": "duplicate of #",
        "notes.txt": "not an image",
        "fake.jpg": "not a supported image",
        "huge.png": "pixels",
        "escape.jpg": "leads out of the library",
        "outdir": "leads out of the library",
        "broken.jpg": "broken symlink",
        "pipe.jpg": "not a regular file",
    }
    if not locked_readable:
        expected_skips["locked.jpg"] = "Permission denied"
    for rel, why in expected_skips.items():
        assert any(line.startswith(f"  skipped {rel}: ") and why in line for line in out.splitlines()), (rel, out)
    assert f"added {len(good)}, changed 0, moved 0, removed 0, unchanged 0" in out, out
    assert f"unreadable {len(expected_skips) - 1}, duplicates 1" in out, out

    library = Library.objects.get(name="photos")
    images = {im.path: im for im in Image.objects.filter(library=library)}
    assert set(images) == set(good)
    a = images["a.jpg"]
    assert f"duplicate of #{a.pk}" in out
    ingest.ingest_pending(redis=redis)  # the workers' pipeline, in this process (the next tests run real workers)

    # every readable image is searchable; nothing was copied: the data folder holds thumbnails only
    assert Image.objects.filter(library=library, status="indexed").count() == len(good)
    assert search_ids(client) == {im.pk for im in images.values()}
    media = [p.relative_to(settings.MEDIA_ROOT) for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]
    assert len(media) == len(good) and all(p.parts[0] == "thumbs" for p in media), media
    assert all(not im.file for im in Image.objects.all())
    assert snapshot(root) == before  # not one file written or touched

    # the original is served from where it lies, with its sniffed type
    body = client.get(f"/api/images/{a.pk}").json()
    assert body["library"] == "photos" and body["path"] == "a.jpg"
    assert body["image_url"] == f"http://testserver/images/{a.pk}/original"
    resp = client.get(f"/images/{a.pk}/original")
    assert resp.status_code == 200 and resp["Content-Type"] == "image/jpeg"
    assert resp["X-Content-Type-Options"] == "nosniff" and resp.content == demo_images[0][0]
    assert client.get(f"/images/{a.pk}/").status_code == 200  # the detail page shows it too


def test_second_scan_reports_exactly_what_changed(redis, demo_images, tmp_path, client, settings):
    root = tmp_path / "lib"
    paths = [f"{'sub/' if i % 3 else ''}p{i}.jpg" for i in range(20)]
    for i, rel in enumerate(paths):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(demo_images[i][0])
    add_and_scan(root, "lib")
    ingest.ingest_pending(redis=redis)  # the same pipeline as a worker's, in this process
    by_path = {im.path: im for im in Image.objects.all()}
    emb_before = dict(Embedding.objects.values_list("image_id", "id"))
    assert len(emb_before) == 20
    assert search_ids(client) == set(emb_before)  # this process's index is built and current

    deleted, rewritten, moved, touched = paths[0:3], paths[3:5], paths[5], paths[6]
    for rel in deleted:
        (root / rel).unlink()
    added = [f"new/n{i}.jpg" for i in range(5)]
    (root / "new").mkdir()
    for j, rel in enumerate(added):
        (root / rel).write_bytes(demo_images[40 + j][0])
    for j, rel in enumerate(rewritten):
        (root / rel).write_bytes(demo_images[50 + j][0])
    (root / "moved").mkdir()
    os.rename(root / moved, root / "moved" / "here.jpg")
    st = (root / touched).stat()
    os.utime(root / touched, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))

    rc, out, err = library_cmd("scan", "lib")
    assert rc == 0, err
    assert "added 5, changed 2, moved 1, removed 3, unchanged 14 (1 touched: same content, new mtime)" in out, out
    # only the 5 new and the 2 rewritten wait for the model
    pending = set(Image.objects.filter(status="pending").values_list("path", flat=True))
    assert pending == set(added) | set(rewritten)
    mover = Image.objects.get(pk=by_path[moved].pk)  # same id, new path, still indexed with its vector
    assert mover.path == "moved/here.jpg" and mover.status == "indexed"
    assert not Image.objects.filter(pk__in=[by_path[p].pk for p in deleted]).exists()

    run_worker(tmp_path, "--burst")
    done_at = time.monotonic()
    emb_after = dict(Embedding.objects.values_list("image_id", "id"))
    expected = {im.pk for im in Image.objects.all()}
    assert set(emb_after) == expected and len(expected) == 22
    reencoded = {i for i in emb_after if emb_before.get(i) != emb_after[i]}
    assert reencoded == {im.pk for im in Image.objects.filter(path__in=added + rewritten)}
    while search_ids(client) != expected:  # web processes catch up within 2 s
        assert time.monotonic() - done_at < 2, "search did not reflect the scan within 2 s"
        time.sleep(0.05)
    # the rewritten images are found by their new picture, not the old one
    for rel in rewritten:
        image = Image.objects.get(path=rel)
        hits = client.post("/api/search/image", {"file": _upload(root / rel), "k": 1}).json()["results"]
        assert hits[0]["id"] == image.pk and hits[0]["score"] > 0.99


def _upload(path: Path):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg")


def test_a_disconnected_disk_removes_nothing(redis, demo_images, tmp_path, client):
    root = tmp_path / "disk"
    root.mkdir()
    for i in range(4):
        (root / f"{i}.jpg").write_bytes(demo_images[i][0])
    add_and_scan(root, "disk")
    assert Image.objects.count() == 4

    os.rename(root, tmp_path / "elsewhere")  # unmounted
    rc, out, err = library_process(tmp_path, "scan", "disk")
    assert rc == 2, (out, err)
    assert "does not exist" in err and "nothing was removed" in err
    library = Library.objects.get(name="disk")
    assert library.state == "refused" and "does not exist" in library.message
    page = client.get("/status/").content.decode()
    assert "disk: refused" in page and "does not exist" in page  # the status page says so too
    assert Image.objects.count() == 4

    root.mkdir()  # an empty mount point: the folder is there, the photos are not
    rc, out, err = library_cmd("scan", "disk")
    assert rc == 2 and "holds no images while the library had 4" in err, (out, err)
    assert Image.objects.count() == 4

    root.rmdir()
    os.rename(tmp_path / "elsewhere", root)  # plugged back in
    rc, out, err = library_cmd("scan", "disk")
    assert rc == 0 and "unchanged 4" in out, (out, err)
    library.refresh_from_db()
    assert library.state == "ok" and library.message == ""
    # an image whose file could not be read while the disk was away is tried again once it reads
    Image.objects.filter(path="0.jpg").update(status="failed", failure_reason="the stored file cannot be read (gone)")
    rc, out, err = library_cmd("scan", "disk")
    assert rc == 0 and Image.objects.get(path="0.jpg").status == "pending"

    rc, out, err = library_cmd("remove", "disk")
    assert rc == 0 and Image.objects.count() == 0 and not Library.objects.exists()
    assert sorted(p.name for p in root.iterdir()) == [f"{i}.jpg" for i in range(4)]  # no file touched
    shutil.rmtree(root)
