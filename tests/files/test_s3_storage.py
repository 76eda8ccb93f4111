"""Media in an S3 bucket (CLIPSEARCH_STORAGE=s3), over HTTP against a real S3 API server on
127.0.0.1 (moto's, started by the tests): uploads and thumbnails land in the bucket, the app serves
them with its checks and headers, a real worker process reads them to encode and OCR, re-encode
and delete work, and check_index compares the database with the bucket."""
import io
import os
import subprocess
import sys

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from embeddings.models import Image
from tests import s3
from tests.pipeline.test_ocr import sign
from tests.support import ROOT, run_worker

pytestmark = pytest.mark.django_db(transaction=True)


def check_index() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("check_index", stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue() + err.getvalue()


def test_uploads_serving_workers_reencode_delete_and_check_index_on_s3(client, redis, s3_media, auth, demo_images,
                                                                        tmp_path, settings):
    endpoint, bucket = s3_media
    settings.OCR_ENABLED = True
    files = [SimpleUploadedFile("circle.jpg", demo_images[0][0]), SimpleUploadedFile("sign.jpg", sign("Dock 17")),
             SimpleUploadedFile("star.jpg", demo_images[1][0])]
    resp = client.post("/api/images", {"files": files}, **auth)
    assert resp.status_code == 201, resp.content
    ids = [i["id"] for i in resp.json()["images"]]
    rows = {im.pk: im for im in Image.objects.filter(pk__in=ids)}
    assert len(rows) == 3
    stored = s3.keys(endpoint, bucket)
    for im in rows.values():  # the file and its thumbnail are objects in the bucket, nothing on local disk
        assert {im.file.name, im.thumbnail.name} <= stored
    assert not (tmp_path / "media").exists()

    out = run_worker(tmp_path, "--burst")  # a real worker process: reads the originals from the bucket
    assert set(Image.objects.filter(pk__in=ids).values_list("status", flat=True)) == {"indexed"}, out[-3000:]
    sign_image = Image.objects.get(original_filename="sign.jpg")
    assert sign_image.ocr_status == "done" and "17" in (sign_image.ocr_text or ""), out[-3000:]

    detail = client.get(f"/api/images/{sign_image.pk}").json()
    for key in ("image_url", "thumbnail_url"):  # served by the app, not a bucket URL
        assert detail[key].startswith("http://testserver/media/"), detail[key]
        served = client.get(detail[key].removeprefix("http://testserver"))
        assert served.status_code == 200 and served["Content-Type"] == "image/jpeg"
        assert served["X-Content-Type-Options"] == "nosniff"
        name = sign_image.file.name if key == "image_url" else sign_image.thumbnail.name
        body = b"".join(served.streaming_content)
        assert body == s3.client(endpoint).get_object(Bucket=bucket, Key=name)["Body"].read()
    assert client.get("/media/thumbs/no/such.jpg").status_code == 404
    found = client.get("/api/search", {"q": "dock 17", "cutoff": "none"}).json()["results"]
    assert found and found[0]["id"] == sign_image.pk

    code, report = check_index()
    assert code == 0 and "index and database agree" in report, report
    resp = client.post("/api/images/reencode", {"ids": [sign_image.pk]}, content_type="application/json", **auth)
    assert resp.status_code == 200 and resp.json()["done"] == [sign_image.pk]
    run_worker(tmp_path, "--burst")
    assert Image.objects.get(pk=sign_image.pk).status == "indexed"

    gone = rows[ids[2]]
    assert client.delete(f"/api/images/{gone.pk}", **auth).status_code in (200, 204)
    left = s3.keys(endpoint, bucket)
    assert gone.file.name not in left and gone.thumbnail.name not in left
    assert {sign_image.file.name, sign_image.thumbnail.name} <= left

    # An object removed behind the app's back is found; an unreachable bucket changes nothing.
    s3.client(endpoint).delete_object(Bucket=bucket, Key=rows[ids[0]].file.name)
    code, report = check_index()
    assert code == 1 and "files missing: 1" in report, report
    settings.STORAGES = s3.storages(endpoint, "no-such-bucket")
    code, report = check_index()
    assert code == 2 and "media folder is missing" in report, report
    assert Image.objects.filter(status="failed").count() == 0


def test_s3_without_a_bucket_stops_start_up_naming_the_variable(tmp_path):
    env = {**os.environ, "CLIPSEARCH_STORAGE": "s3", "CLIPSEARCH_S3_BUCKET": "", "CLIPSEARCH_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "CLIPSEARCH_S3_BUCKET must name the bucket" in out.stderr, out.stderr[-2000:]
    env["CLIPSEARCH_STORAGE"] = "azure"
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "CLIPSEARCH_STORAGE must be one of filesystem, s3" in out.stderr, out.stderr[-2000:]


def test_a_large_library_scan_writes_thumbnails_from_forked_processes(s3_media, redis, tmp_path):
    """From PROCESSES_FROM files a scan reads in forked processes: each opens its own connection
    to the bucket (a boto3 client's sockets are never shared across a fork)."""
    from PIL import Image as PILImage

    from embeddings.library import libraries, scan

    endpoint, bucket = s3_media
    root = tmp_path / "photos"
    root.mkdir()
    n = scan.PROCESSES_FROM + 20
    for i in range(n):
        PILImage.new("RGB", (40, 30), (i % 256, i // 256 * 40, 90)).save(root / f"{i}.png")  # lossless: distinct
    library = libraries.add_library(str(root), name="photos")
    report = libraries.run_scan(library)
    assert report["counts"]["added"] == n, report["counts"]
    thumbs = set(Image.objects.filter(library=library).values_list("thumbnail", flat=True))
    assert len(thumbs) == n and thumbs <= s3.keys(endpoint, bucket)
