"""Libraries over the API and in the admin, originals served only from inside a root, the
workers' periodic rescans (one scanner per library), and photo facts read from EXIF for uploads
and library files alike."""
import io
import os
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image as PILImage

from embeddings.library import libraries
from embeddings.models import Image, Library
from embeddings.queue import get_queue
from tests.support import assert_error, run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def exif_photo(seed=0) -> bytes:
    """A JPEG with EXIF written as a camera does: taken time with offset, camera, GPS, orientation."""
    exif = PILImage.Exif()
    exif[0x0112] = 6  # shown rotated by 90°
    exif[0x010F], exif[0x0110] = "Canon", "EOS R6"
    exif[0x9003], exif[0x9011] = "2023:05:06 07:08:09", "-04:00"
    exif[0x8825] = {1: "S", 2: (33.0, 51.0, 54.0), 3: "E", 4: (151.0, 12.0, 36.0)}
    buf = io.BytesIO()
    PILImage.new("RGB", (64, 48), (seed * 40 % 255, 90, 30)).save(buf, "JPEG", exif=exif)
    return buf.getvalue()


def make_library(tmp_path, demo_images, n=3, name="shelf"):
    root = tmp_path / name
    root.mkdir()
    for i in range(n):
        (root / f"{i}.jpg").write_bytes(demo_images[i][0])
    return libraries.add_library(str(root), name)


def check_exif_facts(body):
    assert body["taken_at"].replace("Z", "+00:00") in ("2023-05-06T07:08:09-04:00", "2023-05-06T11:08:09+00:00")
    assert body["camera"] == "Canon EOS R6"
    assert body["gps"]["lat"] == pytest.approx(-(33 + 51 / 60 + 54 / 3600))
    assert body["gps"]["lon"] == pytest.approx(151 + 12 / 60 + 36 / 3600)
    assert (body["width"], body["height"]) == (48, 64)  # the orientation is applied


def test_photo_facts_of_uploads_and_library_files(redis, tmp_path, client, auth):
    resp = client.post("/api/images", {"files": [_file("exif.jpg", exif_photo())]}, **auth)
    assert resp.status_code == 201, resp.content
    check_exif_facts(client.get(f"/api/images/{resp.json()['images'][0]['id']}").json())

    root = tmp_path / "cam"
    root.mkdir()
    (root / "IMG_0001.jpg").write_bytes(exif_photo(seed=1))
    library = libraries.add_library(str(root))
    libraries.run_scan(library)
    image = Image.objects.get(library=library)
    assert image.taken_offset == "-04:00" and image.camera_model == "EOS R6"
    check_exif_facts(client.get(f"/api/images/{image.pk}").json())


def _file(name, data):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="image/jpeg")


@pytest.mark.slow
def test_api_lists_libraries_and_queues_a_scan(redis, demo_images, tmp_path, client, auth):
    library = make_library(tmp_path, demo_images)
    assert_error(client.get("/api/libraries"), 401)
    assert_error(client.post(f"/api/libraries/{library.pk}/scan"), 401)
    assert_error(client.post("/api/libraries/999999/scan", **auth), 404)
    [row] = client.get("/api/libraries", **auth).json()
    assert (row["name"], row["state"], row["counts"]["images"], row["last_scan"]) == ("shelf", "never", 0, None)

    resp = client.post(f"/api/libraries/{library.pk}/scan", **auth)
    assert resp.status_code == 202 and resp.json() == {"id": library.pk, "name": "shelf", "queued": True}
    run_worker(tmp_path, "--burst")  # the scan job, then the encoding it queued
    [row] = client.get("/api/libraries", **auth).json()
    assert row["state"] == "ok" and row["last_scan_finished_at"]
    assert row["counts"] == {"images": 3, "indexed": 3, "pending": 0, "failed": 0}
    assert row["last_scan"]["added"] == 3


def test_admin_lists_libraries_and_scans_now(redis, demo_images, tmp_path, staff_client):
    library = make_library(tmp_path, demo_images)
    libraries.run_scan(library)
    page = staff_client.get("/admin/embeddings/library/")
    assert page.status_code == 200 and b"shelf" in page.content
    detail = staff_client.get(f"/admin/embeddings/library/{library.pk}/change/")
    assert detail.status_code == 200 and b"added 3" in detail.content
    get_queue().empty()
    resp = staff_client.post("/admin/embeddings/library/", {"action": "scan_now", "_selected_action": [library.pk]})
    assert resp.status_code == 302
    assert [job.func_name for job in get_queue().jobs] == ["embeddings.jobs.scan_library"]
    # adding a folder that is not one is refused with the reason, not a 500
    resp = staff_client.post("/admin/embeddings/library/add/", {"name": "nope", "root": str(tmp_path / "missing")})
    assert resp.status_code == 200 and b"is not a folder" in resp.content


def test_originals_only_from_inside_a_root(redis, demo_images, tmp_path, client):
    library = make_library(tmp_path, demo_images, n=2)
    libraries.run_scan(library)
    first, second = Image.objects.filter(library=library).order_by("path")
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(demo_images[5][0])
    os.unlink(tmp_path / "shelf" / "1.jpg")
    os.symlink(secret, tmp_path / "shelf" / "1.jpg")  # swapped for a way out since the scan
    assert client.get(f"/images/{second.pk}/original").status_code == 404
    Image.objects.filter(pk=second.pk).update(path="../secret.jpg")
    assert client.get(f"/images/{second.pk}/original").status_code == 404
    (tmp_path / "shelf" / "0.jpg").write_bytes(b"<svg xmlns='http://www.w3.org/2000/svg'/>")  # not on the allowlist
    assert client.get(f"/images/{first.pk}/original").status_code == 404
    upload = Image.objects.create(sha256="0" * 64, width=1, height=1, format="JPEG", byte_size=1)
    assert client.get(f"/images/{upload.pk}/original").status_code == 404  # not a library image


def test_periodic_rescans_one_scanner_per_library(redis, demo_images, tmp_path):
    library = make_library(tmp_path, demo_images)
    assert libraries.scan_due(60) == 0  # just added: not due for an hour
    Library.objects.filter(pk=library.pk).update(created_at=timezone.now() - timedelta(hours=2))
    lock = redis.lock(f"clipsearch:libscan:{library.pk}", timeout=30)
    assert lock.acquire(blocking=False)  # another worker is scanning it
    assert libraries.scan_due(60) == 0 and not Image.objects.exists()
    lock.release()
    assert libraries.scan_due(0) == 0  # 0: periodic scans are off
    assert libraries.scan_due(60) == 1 and Image.objects.count() == 3
    assert libraries.scan_due(60) == 0  # scanned a moment ago: not due again


def test_index_folder_in_place_adds_a_library(redis, demo_images, tmp_path, settings, monkeypatch):
    from django.core.management import call_command

    from embeddings.library import scan

    monkeypatch.setattr(scan, "PROCESSES_FROM", 0)  # the process pool that big first scans use
    root = tmp_path / "album"
    root.mkdir()
    for i in range(4):
        (root / f"{i}.jpg").write_bytes(demo_images[i][0])
    out = io.StringIO()
    call_command("index_folder", str(root), "--in-place", stdout=out, stderr=io.StringIO())
    assert "added library 'album'" in out.getvalue() and "added 4," in out.getvalue()
    assert Image.objects.filter(library__name="album").count() == 4
    thumbs = [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
    assert len(thumbs) == 4 and all("thumbs" in p.parts for p in thumbs)  # written by the pool, nothing copied
    out = io.StringIO()
    call_command("index_folder", str(root), "--in-place", stdout=out, stderr=io.StringIO())
    assert "unchanged 4" in out.getvalue() and Library.objects.count() == 1  # run again: a rescan


def test_an_interrupted_scan_keeps_its_work_and_runs_again(redis, demo_images, tmp_path, monkeypatch):
    from embeddings.library import scan

    monkeypatch.setattr(scan, "CHUNK", 2)
    library = make_library(tmp_path, demo_images, n=5)

    class Interrupt:  # a progress bar at which someone presses Ctrl-C after the first chunk
        def update(self, n):
            raise KeyboardInterrupt

        def close(self):
            pass

    with pytest.raises(KeyboardInterrupt):
        libraries.run_scan(library, progress=lambda total: Interrupt())
    library.refresh_from_db()
    assert library.state == "failed" and "interrupted" in library.message
    assert Image.objects.filter(library=library).count() == 2  # the first chunk was committed
    report = libraries.run_scan(library)
    assert (report["counts"]["added"], report["counts"]["unchanged"]) == (3, 2)
    library.refresh_from_db()
    assert library.state == "ok" and Image.objects.filter(library=library).count() == 5


def test_a_duplicate_is_added_once_its_twin_is_gone(redis, demo_images, tmp_path):
    from embeddings import services

    upload = services.add_image(demo_images[0][0], "upload.jpg", enqueue=False)
    library = make_library(tmp_path, demo_images, n=2)  # 0.jpg has the upload's bytes
    first = libraries.run_scan(library)
    assert first["counts"]["duplicates"] == 1 and ["0.jpg", f"duplicate of #{upload.pk}"] in first["skipped"]
    again = libraries.run_scan(library)  # unchanged duplicate: hashed, not decoded, still a duplicate
    assert again["counts"]["duplicates"] == 1 and again["counts"]["unchanged"] == 1
    services.delete_images([upload])
    third = libraries.run_scan(library)
    assert third["counts"]["added"] == 1 and Image.objects.filter(library=library).count() == 2
