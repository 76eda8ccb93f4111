"""Search API on the demo gallery: latency and ranking quality with the bundled demo model.

A fresh SQLite database and the embedded Redis under var/bench/demo_api; 480 demo-gallery images
(synth.gallery, named as `make demo` names them) added and ingested in-process (services.add_image,
ingest.ingest_pending); then `GET /api/search` through Django's test client for the 48
"a <colour> <shape>" queries and 48 longer ones, each request timed. "new query" rows clear the
text-vector cache first (every request encodes its text); "repeated" rows ask the same query again
(cached vector: index + DB + framework).

    .venv/bin/python bench/demo_api.py [--images 480] [--no-wait]
"""
from __future__ import annotations

import argparse
import io
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DATA = common.BENCH_DIR / "demo_api"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=480)
    ap.add_argument("--no-wait", action="store_true")
    args = ap.parse_args(argv)

    shutil.rmtree(DATA, ignore_errors=True)
    common.setup_django("demo", data_dir=DATA)
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from clipsearch import embedded_redis
    from demo import synth
    from demo.metrics import precision_at_k, relevant_ids
    from embeddings import services
    from embeddings.pipeline import ingest
    from embeddings.search import selectors

    call_command("migrate", verbosity=0, interactive=False)
    selectors.warm_up()  # the model loads here, not inside the timed ingest (as in a worker)
    if settings.REDIS_EMBEDDED:
        embedded_redis.start(settings.DATA_DIR)
    try:
        names, metas = [], []
        for i, (img, meta) in enumerate(synth.gallery(args.images, seed=31337)):
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            names.append(synth.neutral_filename(i))
            metas.append(meta)
            services.add_image(buf.getvalue(), names[-1], enqueue=False)
        t = time.perf_counter()
        totals = ingest.ingest_pending()
        ingest_s = time.perf_counter() - t
        assert totals["indexed"] == args.images, totals
        client = Client()
        # First request of the process (index load, URL resolver, API schema objects): untimed.
        assert client.get("/api/search", {"q": "warm up", "k": 20}).status_code == 200
        pairs = [(c, s) for c in synth.COLOURS for s in synth.SHAPES]
        short = [f"{'an' if c[0] in 'aeiou' else 'a'} {c} {s}" for c, s in pairs]
        long = [f"a photo of a {z} {c} {s} on a textured background"
                for z, c, s in zip(synth.SIZES * 24, list(synth.COLOURS) * 6, synth.SHAPES * 8, strict=True)]
        load = common.loadavg() if args.no_wait else common.wait_for_quiet()

        def run(queries, fresh):
            times, hits = [], []
            for q in queries:
                if fresh:
                    selectors._text_vector.cache_clear()
                t0 = time.perf_counter()
                resp = client.get("/api/search", {"q": q, "k": 20})
                times.append((time.perf_counter() - t0) * 1000)
                assert resp.status_code == 200, resp.content[:300]
                hits.append(resp.json()["results"])
            return times, hits

        rows = []
        for label, queries in (("a <colour> <shape> (2-3 words)", short), ("longer sentence (10 words)", long)):
            fresh, hits = run(queries, True)
            cached, _ = run(queries, False)
            for timing, times in (("new query", fresh), ("repeated", cached)):
                p50, p99 = common.percentile(times, 50), common.percentile(times, 99)
                rows.append([f"{label}, {timing}", len(queries), p50, p99])
            if queries is short:
                ranked = [[r["original_filename"] for r in res] for res in hits]
                relevant = [{names[i] for i in relevant_ids(metas, colour=c, shape=s)} for c, s in pairs]
                precision = precision_at_k(ranked, relevant, 5)
    finally:
        if settings.REDIS_EMBEDDED:
            embedded_redis.stop(settings.DATA_DIR)
    headers = ["GET /api/search?k=20", "requests", "p50 ms", "p99 ms"]
    print(f"\n## Search API on the demo gallery ({args.images} images, demo model, SQLite, load {load:.2f})\n")
    print(common.table(headers, rows))
    print(f"\ningest of the gallery: {ingest_s:.1f} s ({args.images / ingest_s:.0f} images/s); "
          f"precision@5 of the 48 colour x shape queries: {precision:.3f}")
    return {"rows": rows, "precision": precision, "load": load, "ingest_s": ingest_s}


if __name__ == "__main__":
    main()
