"""Real-world oddities (tests/corpus.py) through every entry point: the upload API then a real
worker, search by image, image encoding, the admin upload and a library scan. Each file gets a
2xx or a 4xx with a reason a person can read, never a 5xx, in under 5 s; an odd but valid image is
taken everywhere, a refused format nowhere, and a damaged one the same way by every path; the
worker indexes or fails each stored image with a reason and exits cleanly; memory stays bounded
(the peaks are printed: `pytest -s`)."""
import os
import re
import resource
import subprocess
import sys
import time

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from embeddings.models import Image
from tests.corpus import oddities
from tests.support import ROOT, db_env

pytestmark = pytest.mark.django_db(transaction=True)

CORPUS = oddities()
MAX_SECONDS = 5
MAX_RSS_MB = 1600  # generous: the model, Django, OCR and one decode at a time (550-1,400 MB measured)


def unreadable(reason: str) -> str | None:
    """What is wrong with a reason as a person would read it, or None."""
    if not reason or not reason.strip(" .:"):
        return "empty"
    if re.search(r"object at 0x|<[\w.]+ object", reason):
        return "an object repr"
    if re.search(r"\b(\w[\w ]*?): \1:", reason) or "image: image" in reason or reason.endswith(": "):
        return "a repeated or dangling prefix"
    return None


def _timed(client, path, data, name, **extra):
    start = time.perf_counter()
    resp = client.post(path, data, **extra)
    took = time.perf_counter() - start
    assert resp.status_code < 500, (name, path, resp.content[:500])
    assert took < MAX_SECONDS, (name, path, took)
    return resp


def _outcome(resp, ok_status):
    if resp.status_code == ok_status:
        return "taken"
    error = resp.json()["error"]
    assert 400 <= resp.status_code < 500 and not unreadable(error["message"]), (resp.status_code, error)
    return "refused"


def test_every_oddity_through_the_api_and_a_real_worker(client, redis, auth, tmp_path):
    outcomes = {}
    client.post("/api/encode/text", {"text": "warm up"}, content_type="application/json")  # loads the model: not timed
    for name, (data, expected) in CORPUS.items():
        upload = _timed(client, "/api/images", {"files": [SimpleUploadedFile(name, data)]}, name, **auth)
        query = _timed(client, "/api/search/image", {"file": SimpleUploadedFile(name, data), "k": 3}, name)
        encode = _timed(client, "/api/encode/image", {"file": SimpleUploadedFile(name, data)}, name)
        got = (_outcome(upload, 201), _outcome(query, 200), _outcome(encode, 200))
        outcomes[name] = got
        assert len(set(got)) == 1, (name, got)  # every path decides alike
        want = {"ok": "taken", "refused": "refused"}.get(expected, got[0])
        assert got[0] == want, (name, expected, got, upload.content[:300])
    web_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # The real worker encodes what was stored; its peak memory comes from the kernel's accounting.
    worker = subprocess.Popen([sys.executable, "manage.py", "rqworker", "embeddings", "--burst"], cwd=ROOT,
                              env=db_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(worker.pid, 0)
    log = worker.stdout.read().decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, log[-3000:]
    worker_peak = usage.ru_maxrss / 1024
    stored = {im.original_filename: im for im in Image.objects.all()}
    taken = {n for n, got in outcomes.items() if got[0] == "taken"}
    assert set(stored) == taken
    for name, im in stored.items():
        assert im.status in ("indexed", "failed"), (name, im.status)
        assert im.status == "indexed" or not unreadable(im.failure_reason), (name, im.failure_reason)
        if CORPUS[name][1] == "ok":
            assert im.status == "indexed", (name, im.failure_reason)
    counts = {k: sum(1 for got in outcomes.values() if got[0] == k) for k in ("taken", "refused")}
    print(f"\nwild corpus: {len(CORPUS)} files, {counts}; indexed "
          f"{sum(im.status == 'indexed' for im in stored.values())}; peak RSS web {web_peak:.0f} MB, "
          f"worker {worker_peak:.0f} MB")
    assert web_peak < MAX_RSS_MB and worker_peak < MAX_RSS_MB, (web_peak, worker_peak)


def test_every_oddity_through_the_admin_upload(staff_client, redis):
    files = [SimpleUploadedFile(name, data) for name, (data, _) in CORPUS.items()]
    resp = staff_client.post("/admin/embeddings/image/add/", {"files": files}, follow=True)
    assert resp.status_code == 200
    shown = [str(m) for m in resp.context["messages"]]
    rejected = {m.split(": rejected: ")[0]: m.split(": rejected: ", 1)[1] for m in shown if ": rejected: " in m}
    stored = set(Image.objects.values_list("original_filename", flat=True))
    for name, (_, expected) in CORPUS.items():
        assert (name in stored) != (name in rejected), name
        if expected == "ok":
            assert name in stored, (name, rejected.get(name))
        elif expected == "refused":
            assert name in rejected and not unreadable(rejected[name]), (name, rejected.get(name))


def test_every_oddity_through_a_library_scan(redis, tmp_path):
    libraries = pytest.importorskip("embeddings.library.libraries")
    folder = tmp_path / "wild"
    folder.mkdir()
    for name, (data, _) in CORPUS.items():
        (folder / name.replace("/", "_")).write_bytes(data)
    library = libraries.add_library(str(folder), name="wild")
    start = time.perf_counter()
    report = libraries.run_scan(library)
    assert time.perf_counter() - start < MAX_SECONDS * 6, report
    stored = set(Image.objects.filter(library=library).values_list("path", flat=True))
    for name, (_, expected) in CORPUS.items():
        if expected == "ok":
            assert name in stored, (name, report)
        elif expected == "refused":
            assert name not in stored, (name, report)
