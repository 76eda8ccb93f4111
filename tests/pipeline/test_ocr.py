"""OCR as its own job after encoding: awkward files go through it without a crash or a stuck job,
a failure stays with its image and never touches its CLIP indexing, re-encoding never reads the
text again, and with OCR off nothing is asked of it. Real engine (RapidOCR on ONNX Runtime),
real database, Redis and worker."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image as PILImage
from PIL import ImageDraw, ImageFont

from embeddings import services
from embeddings.models import Image
from embeddings.pipeline import ingest, ocr
from embeddings.queue import ocr_queue
from embeddings.search import keywords
from tests.bad_inputs import corpus
from tests.support import ROOT, jpeg_bytes, run_worker, running_processes

pytestmark = pytest.mark.django_db(transaction=True)


def sign(text: str) -> bytes:
    im = PILImage.new("RGB", (480, 200), (250, 250, 250))
    ImageDraw.Draw(im).text((30, 60), text, font=ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 44),
                            fill=(10, 10, 10))
    return jpeg_bytes(im)


def test_bad_input_corpus_goes_through_ocr(redis, tmp_path, settings):
    settings.OCR_ENABLED = True
    stored = []
    for name, (data, expected) in corpus().items():
        if expected == "indexed":
            stored.append(services.add_image(data, name, enqueue=False))
    stored.append(services.add_image(sign("Hello 2024"), "sign.jpg", enqueue=False))
    out = run_worker(tmp_path, "--burst")  # exits 0 only when every job finished; none may hang
    rows = Image.objects.filter(pk__in=[im.pk for im in stored])
    assert set(rows.values_list("status", flat=True)) == {"indexed"}, out[-3000:]
    assert set(rows.values_list("ocr_status", flat=True)) <= {"done", "failed"}, out[-3000:]
    assert "hello" in Image.objects.get(original_filename="sign.jpg").ocr_text.lower()
    assert "hello" in Image.objects.get(original_filename="sign.jpg").keywords


def test_ocr_failure_stays_with_its_image(redis, settings):
    settings.OCR_ENABLED = True
    good = services.add_image(sign("Bus stop 42"), "bus.jpg", enqueue=False)
    gone = services.add_image(sign("Lost file"), "lost.jpg", enqueue=False)
    assert ingest.ingest_pending(redis=redis)["indexed"] == 2
    assert set(Image.objects.values_list("ocr_status", flat=True)) == {"pending"}
    gone.file.storage.delete(gone.file.name)  # the stored file vanished after encoding
    totals = ocr.run_pending(redis=redis)
    assert totals == {"done": 1, "failed": 1}
    good.refresh_from_db()
    gone.refresh_from_db()
    assert (good.status, good.ocr_status) == ("indexed", "done") and "42" in good.ocr_text
    assert (gone.status, gone.ocr_status, gone.ocr_text) == ("indexed", "failed", None)  # still found by meaning


def test_reencode_keeps_the_text_and_ocr_off_asks_nothing(redis, settings):
    settings.OCR_ENABLED = True
    im = services.add_image(sign("Platform 9"), "platform.jpg", enqueue=False)
    ingest.ingest_pending(redis=redis)
    ocr.run_pending(redis=redis)
    im.refresh_from_db()
    text = im.ocr_text
    assert im.ocr_status == "done" and "platform" in text.lower()
    services.reencode_images([im])
    ingest.ingest_pending(redis=redis)
    im.refresh_from_db()
    assert (im.status, im.ocr_status, im.ocr_text) == ("indexed", "done", text)  # not read again
    assert "platform" in im.keywords

    settings.OCR_ENABLED = False
    off = services.add_image(sign("Exit"), "exit.jpg", enqueue=False)
    ingest.ingest_pending(redis=redis)
    off.refresh_from_db()
    assert (off.status, off.ocr_status) == ("indexed", "")
    assert ocr.run_pending(redis=redis) == {"done": 0, "failed": 0}


def test_a_worker_that_keeps_dying_on_an_image_fails_it(redis, settings):
    """Claims carry a try count: an image whose reading killed the worker MAX_TRIES times fails."""
    settings.OCR_ENABLED = True
    im = services.add_image(sign("Crash"), "crash.jpg", enqueue=False)
    ingest.ingest_pending(redis=redis)
    redis.set(f"clipsearch:ocr:tries:{im.pk}", ocr.MAX_TRIES)  # as if killed that often mid-read
    ocr.run_pending(redis=redis)
    im.refresh_from_db()
    assert im.ocr_status == "failed" and im.status == "indexed"



HOLDER = """
import os, sys
import django
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clipsearch.settings")
django.setup()
from PIL import Image
from embeddings.pipeline import ocr
ocr.read_text(Image.new("RGB", (64, 32), "white"))  # starts the reader process
print(*[p.pid for p in ocr._reader_process()._processes.values()], flush=True)
sys.stdin.read()  # held until the test kills this process
"""


def test_the_reader_leaves_with_a_worker_killed_outright(tmp_path):
    """SIGKILL gives a worker no chance to shut its OCR reader down; the reader must not outlive it."""
    env = {**os.environ, "CLIPSEARCH_DATA_DIR": str(tmp_path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER], cwd=ROOT, env=env, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        reader = int(holder.stdout.readline())
        assert reader in running_processes()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 15
        while reader in running_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        if reader in running_processes():
            os.kill(reader, signal.SIGKILL)
            raise AssertionError(f"the OCR reader {reader} outlived its killed parent by 15 s")
    finally:
        holder.kill()


def test_a_worker_stopping_mid_read_leaves_the_image_pending_quietly(redis, settings, caplog):
    """The stop of a worker is not a failure of the image it was reading: the reading child is killed
    (as when the worker leaves), and the image stays pending for the next worker, its tries unspent."""
    import threading

    settings.OCR_ENABLED = True
    image = services.add_image(sign("Platform 9"), "platform.jpg", enqueue=False)
    assert ingest.ingest_pending(redis=redis)["indexed"] == 1
    claim = f"clipsearch:ocr:{image.pk}"
    ocr.stop_reader()  # no reading child yet: starting one (seconds) keeps the read going while we stop it
    done = {}
    reader = threading.Thread(target=lambda: done.update(ocr.run_pending(redis=redis)))
    try:
        reader.start()
        deadline = time.monotonic() + 60
        def reading() -> bool:  # claimed, and its child exists: a stop before the child did is another test's
            pool = ocr._pool
            return bool(redis.exists(claim) and pool is not None and getattr(pool, "_processes", None))

        while not reading() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert reading()
        ocr.stopping.set()  # what ModelWorker.request_stop does
        ocr.stop_reader()  # and the child goes with the process
        reader.join(60)
    finally:
        ocr.stopping.clear()
        ocr.stop_reader()
    assert not reader.is_alive() and done == {"done": 0, "failed": 0}
    image.refresh_from_db()
    assert image.ocr_status == "pending" and image.ocr_text is None
    assert not [r for r in caplog.records if "OCR failed" in r.getMessage()]
    assert int(redis.get(f"clipsearch:ocr:tries:{image.pk}") or 0) == 0 and not redis.exists(claim)
    assert ocr.run_pending(redis=redis) == {"done": 1, "failed": 0}  # the next worker reads it
    # and a finished read keeps no try count, which an image given this id later (a restore) would inherit
    assert not redis.exists(f"clipsearch:ocr:tries:{image.pk}")


def test_a_stopping_worker_starts_no_new_reader():
    """A stop that lands between the claim and the first read must not start a child that outlives it
    (CI caught the read going on in a fresh child after the stop had killed none)."""
    ocr.stop_reader()
    ocr.stopping.set()
    try:
        with pytest.raises(RuntimeError, match="stopping"):
            ocr.read_text(PILImage.new("RGB", (64, 32), "white"))
        assert ocr._pool is None
    finally:
        ocr.stopping.clear()


def _photo(text=None, size=48, w=4000, h=3000):
    """A 12 MP photo-like JPEG (smooth colour field, sensor noise), with a small label in a corner or none."""
    rng = np.random.default_rng(7)
    base = rng.normal(size=(h // 50, w // 50, 3)).cumsum(0).cumsum(1)
    base = (base - base.min()) / (np.ptp(base) + 1e-9) * 200 + 20
    im = PILImage.fromarray(base.astype(np.uint8)).resize((w, h), PILImage.BICUBIC)
    im = PILImage.fromarray(np.clip(np.asarray(im).astype(np.int16) + rng.integers(-12, 12, (h, w, 3)), 0, 255).astype(np.uint8))
    if text:
        draw, x, y = ImageDraw.Draw(im), w - size * len(text) * 0.7 - 80, h - size * 2
        draw.rectangle([x - 20, y - 15, x + size * len(text) * 0.65, y + size * 1.4], fill=(245, 245, 240))
        draw.text((x, y), text, font=ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf", size),
                  fill=(20, 20, 20))
    return jpeg_bytes(im, quality=85)


def test_a_photo_without_text_gets_a_first_look_only_and_small_text_is_still_read(redis, settings):
    settings.OCR_ENABLED = True
    plain = services.add_image(_photo(), "plain.jpg", enqueue=False)
    label = services.add_image(_photo("EXIT 12"), "label.jpg", enqueue=False)
    assert ingest.ingest_pending(redis=redis)["indexed"] == 2
    try:
        before = dict(ocr.counts)
        assert ocr.read_image(plain) == ""
        assert (ocr.counts["looked"] - before["looked"], ocr.counts["read"] - before["read"]) == (1, 0)  # not read in full
        text = ocr.read_image(label)  # 48 px letters in a corner of a 4000x3000 photo
        assert "exit" in text.lower().replace(" ", ""), text
        assert (ocr.counts["looked"] - before["looked"], ocr.counts["read"] - before["read"]) == (2, 1)
    finally:
        ocr.stop_reader()


def test_the_first_look_runs_in_the_encode_batch(redis, settings):
    """A photo without text is done with its encoding: no second decode, no OCR job. One with text
    goes to the OCR job as before, which reads it."""
    settings.OCR_ENABLED = True
    ocr_jobs = ocr_queue()
    plain = services.add_image(_photo(), "plain.jpg", enqueue=False)  # 12 MP: CLIP's 1/8 draft is the look's
    small = services.add_image(_photo(w=640, h=480), "small.jpg", enqueue=False)  # looked at as CLIP drafts it
    before = dict(ocr.counts)
    assert ingest.ingest_pending(redis=redis)["indexed"] == 2
    for im in (plain, small):
        im.refresh_from_db()
        assert (im.status, im.ocr_status, im.ocr_text) == ("indexed", "done", ""), im.original_filename
        assert im.keywords == keywords.document(Image(original_filename=im.original_filename))  # as with no text
    assert ocr.counts["looked"] - before["looked"] == 2 and ocr.counts["read"] == before["read"]  # not read in full
    assert ocr_jobs.count == 0  # no OCR job asked for

    label = services.add_image(_photo("EXIT 12"), "label.jpg", enqueue=False)  # 48 px letters in a corner
    try:
        assert ingest.ingest_pending(redis=redis)["indexed"] == 1
        label.refresh_from_db()
        assert (label.ocr_status, label.ocr_text) == ("pending", None)
        assert ocr_jobs.count == 1
        assert ocr.run_pending(redis=redis) == {"done": 1, "failed": 0}  # what the OCR job runs
        label.refresh_from_db()
        assert label.ocr_status == "done" and "exit" in label.ocr_text.lower().replace(" ", ""), label.ocr_text
        assert ocr.counts["read"] == before["read"] + 1
    finally:
        ocr.stop_reader()
