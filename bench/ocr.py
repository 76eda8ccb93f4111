"""OCR benchmark: what reading the text in images costs, and that it does not delay CLIP indexing.

1. Throughput (images/s), naive beside ours, same pictures, same run:
   naive: RapidOCR with its default settings (detection scales every picture so its SHORT side is
          736 px: thumbnails are blown up, 12 MP photos barely shrunk), fed the fully decoded file;
   ours:  embeddings.pipeline.ocr.read_image's path: the upload policy's decode (JPEG draft), the longest
          side bounded to 1280 px, detection only ever scaling down (longest side 960).
   Pictures: the hybrid test gallery's text pictures (640x480), the demo model's drawings (224x224,
   no text) and 12 MP JPEGs with a line of text.
2. Time until a new batch is searchable by meaning, OCR on vs off: one real worker
   (`manage.py rqworker embeddings`, demo model, started fresh each round) is given a backlog of
   text pictures (with OCR on, it is reading them when the batch arrives); then a batch of 0.3 MP
   pictures is added and the time until all of them are indexed is measured; rounds alternate
   off/on, median of each. Target: on <= 1.1 x off.

    .venv/bin/python bench/ocr.py [--rounds 5] [--batch 32] [--backlog 24] [--no-wait] [--skip-throughput]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402


def pictures():
    """name -> jpeg bytes for each kind of picture."""
    from PIL import Image, ImageDraw, ImageFont

    from demo.synth import gallery
    from tests.search.test_hybrid import gallery_files
    from tests.support import jpeg_bytes

    text = [data for name, data in gallery_files().items() if name.endswith(".jpg")][:7]
    drawings = [jpeg_bytes(img) for img, _ in gallery(8, seed=5)]
    big = []
    for i in range(3):
        im = Image.new("RGB", (4000, 3000), (235 - 20 * i, 230, 220))
        ImageDraw.Draw(im).text((400, 1200), f"Gate {i + 7} closes 21:45", fill=(10, 10, 10),
                                font=ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 220))
        big.append(jpeg_bytes(im))
    return {"text 640x480": text, "drawing 224x224 (no text)": drawings, "12 MP with text": big}


def throughput() -> list[list]:
    import io

    import numpy as np
    from PIL import Image
    from rapidocr_onnxruntime import RapidOCR

    from embeddings.files import image_policy
    from embeddings.pipeline import ocr

    naive = RapidOCR()
    ocr.read_text(Image.new("RGB", (64, 64)))  # starts the reading process
    rows = []
    for kind, datas in pictures().items():
        timings = {}
        for name, run in (("naive", lambda d: naive(np.asarray(Image.open(io.BytesIO(d)).convert("RGB")))),
                          ("ours", lambda d: ocr.read_text(image_policy.decode(d, draft_target=ocr.MAX_SIDE // 2)))):
            run(datas[0])  # warm
            common.wait_for_quiet()
            started = time.perf_counter()
            for d in datas:
                run(d)
            timings[name] = len(datas) / (time.perf_counter() - started)
        rows.append([kind, len(datas), common.fmt(timings["naive"]), common.fmt(timings["ours"]),
                     common.fmt(timings["ours"] / timings["naive"]) + "x", common.fmt(common.loadavg())])
    return rows


def one_round(ocr_on: bool, seed: int, batch: int, backlog: int) -> float:
    """Seconds from adding a batch to all of it being indexed, with a fresh real worker that (OCR
    on) is reading a backlog of text pictures when the batch arrives."""
    import os

    from django.conf import settings

    from demo.synth import gallery
    from embeddings import services
    from embeddings.models import Image
    from tests.support import jpeg_bytes

    env = dict(os.environ, **common.app_env("demo", data_dir=settings.DATA_DIR), CLIPSEARCH_OCR="true" if ocr_on else "false")
    log = open(common.BENCH_DIR / f"ocr-worker-{'on' if ocr_on else 'off'}.log", "w")  # noqa: SIM115
    worker = subprocess.Popen([sys.executable, "manage.py", "rqworker", settings.RQ_QUEUE], cwd=common.ROOT, env=env,
                              stdout=log, stderr=subprocess.STDOUT)

    def wait(done) -> None:
        deadline = time.time() + 600
        while not done():
            if worker.poll() is not None or time.time() > deadline:
                raise SystemExit(f"the worker stopped or stalled; see {log.name}")
            time.sleep(0.02)

    try:
        texts = pictures()["text 640x480"]
        settings.OCR_ENABLED = ocr_on
        # Each a distinct file: bytes appended after the JPEG's end, which decoders ignore.
        services.add_images([(f"t{seed}-{i}.jpg", texts[i % len(texts)] + (seed * 1000 + i).to_bytes(4, "big"), None)
                             for i in range(backlog)])
        wait(lambda: not Image.objects.exclude(status__in=("indexed", "failed")).exists())
        read_before = Image.objects.filter(ocr_status="done").count()
        if ocr_on:  # the reader is at work (its engine loaded, an image done) when the batch comes
            wait(lambda: Image.objects.filter(ocr_status="done").count() > read_before)
        pics = [jpeg_bytes(img.resize((640, 480))) for img, _ in gallery(batch, seed=seed)]
        started = time.perf_counter()
        report = services.add_images([(f"b{seed}-{i}.jpg", d, None) for i, d in enumerate(pics)])
        ids = [o.image.pk for o in report.added]
        assert len(ids) == batch, report.rejected
        wait(lambda: Image.objects.filter(pk__in=ids, status="indexed").count() == len(ids))
        took = time.perf_counter() - started
        read = Image.objects.filter(ocr_status="done").count() - read_before
        print(f"  OCR {'on ' if ocr_on else 'off'}: {took:.2f} s (texts read meanwhile and since: {read}; "
              f"load {common.loadavg():.1f})", file=sys.stderr, flush=True)
        return took
    finally:
        worker.terminate()
        try:
            worker.wait(60)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise SystemExit("the worker did not stop within 60 s of SIGTERM") from None
        log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--backlog", type=int, default=24)
    parser.add_argument("--skip-throughput", action="store_true", help="only the time-to-searchable part")
    parser.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine (figures then noisier)")
    args = parser.parse_args()
    if args.no_wait:
        common._WAIT_BUDGET[0] = 0
    data_dir = common.BENCH_DIR / "ocr"
    shutil.rmtree(data_dir, ignore_errors=True)
    common.setup_django("demo", data_dir=data_dir)
    from django.conf import settings
    from django.core.management import call_command

    from clipsearch import embedded_redis

    if settings.REDIS_EMBEDDED:
        embedded_redis.start(settings.DATA_DIR)
    call_command("migrate", verbosity=0)
    print(f"# OCR benchmark ({common.machine_line()}; git {common.git_rev()})\n")
    if not args.skip_throughput:
        print(common.table(["pictures", "n", "naive img/s", "ours img/s", "speed-up", "load"], throughput()))
    off, on = [], []
    for r in range(args.rounds):  # alternating, so that the machine's drift falls on both alike
        for ocr_on in ((False, True) if r % 2 == 0 else (True, False)):
            (on if ocr_on else off).append(one_round(ocr_on, 100 * r + ocr_on, args.batch, args.backlog))
    ratio = statistics.median(on) / statistics.median(off)
    print()
    print(common.table(["OCR", f"batch of {args.batch} searchable by meaning after (s), median", "rounds"],
                       [["off", common.fmt(statistics.median(off)), " ".join(common.fmt(t) for t in off)],
                        ["on", common.fmt(statistics.median(on)), " ".join(common.fmt(t) for t in on)]]))
    print(f"\non / off = {ratio:.3f} (target <= 1.10); load {common.loadavg():.2f}")
    if settings.REDIS_EMBEDDED:
        embedded_redis.stop(settings.DATA_DIR)


if __name__ == "__main__":
    main()
