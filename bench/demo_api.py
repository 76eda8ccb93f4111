"""Search API on the demo gallery: latency and ranking quality with the bundled demo model.

A fresh SQLite database and the embedded Redis under var/bench/demo_api; 480 demo-gallery images
(synth.gallery, as `make demo` draws them) added and ingested through the app's services; then
`GET /api/search` through Django's test client for the 48 "a <colour> <shape>" queries and 48
longer ones, each request timed. "new query" rows clear the text-vector cache first (every request
encodes its text); "repeated" rows ask the same query again (cached vector: index + DB + framework).

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
    from django.core.management import call_command
    from django.test import Client

    from clipsearch import embedded_redis
    from django.conf import settings
    from embeddings import selectors, services, synth

    call_command("migrate", verbosity=0, interactive=False)
    selectors.warm_up()  # the model loads here, not inside the timed ingest (as in a worker)
    if settings.REDIS_EMBEDDED:
        embedded_redis.start(settings.DATA_DIR)
    try:
        meta = {}
        for i, (img, m) in enumerate(synth.gallery(args.images, seed=31337)):
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=90)
            name = f"demo-{i:04d}.jpg"
            services.add_image(buf.getvalue(), name, enqueue=False)
            meta[name] = m
        t = time.perf_counter()
        totals = services.ingest_pending()
        ingest_s = time.perf_counter() - t
        assert totals["indexed"] == args.images, totals
        client = Client()
        # First request of the process (index load, URL resolver, API schema objects): untimed.
        assert client.get("/api/search", {"q": "warm up", "k": 20}).status_code == 200
        pairs = [(c, s) for c in synth.COLOURS for s in synth.SHAPES]
        short = [f"{'an' if c[0] in 'aeiou' else 'a'} {c} {s}" for c, s in pairs]
        long = [f"a photo of a {z} {c} {s} on a textured background"
                for z, c, s in zip(synth.SIZES * 24, list(synth.COLOURS) * 6, synth.SHAPES * 8)]
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
            rows.append([f"{label}, new query", len(queries), common.percentile(fresh, 50), common.percentile(fresh, 99)])
            rows.append([f"{label}, repeated", len(queries), common.percentile(cached, 50), common.percentile(cached, 99)])
            if queries is short:
                right = [(meta[r["original_filename"]]["colour"], meta[r["original_filename"]]["shape"]) == pair
                         for pair, res in zip(pairs, hits) for r in res[:5]]
                precision = sum(right) / len(right)
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
