"""Smart albums at scale: how soon a newly indexed photo that passes a smart album's search is in the
album, and what albums cost the ingest, on a collection of synthetic vectors (the demo model's size)
plus real demo images encoded by the real pipeline.

naive: re-run every smart album's search whenever an image is indexed (what a stored membership
list needs to stay current): its cost per image is one search per smart album, measured here.
ours: a smart album is its saved search answered when it is read; indexing does no album work, and
a new photo is there as soon as the web process's index has caught up with it.

    .venv/bin/python bench/albums.py [--database-url postgres://...] [--redis-url redis://...] [--n 100000]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default="")
    ap.add_argument("--redis-url", default="")
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--albums", type=int, default=40)
    ap.add_argument("--ingest", type=int, default=1000)
    args = ap.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    data_dir = Path("/tmp/bench-albums")
    env = {"CLIP_MODEL_NAME": "demo", "CLIPSEARCH_DATA_DIR": str(data_dir), "CLIPSEARCH_OCR": "false",
           "DJANGO_SETTINGS_MODULE": "clipsearch.settings", "CLIPSEARCH_INDEX_REFRESH_MS": "1000"}
    if args.database_url:
        env["DATABASE_URL"] = args.database_url
    if args.redis_url:
        env["REDIS_URL"] = args.redis_url
    os.environ.update(env)
    sys.path.insert(0, str(root))
    sys.path.insert(1, str(Path(__file__).resolve().parent))
    import common
    import django

    django.setup()
    import numpy as np
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from demo.synth import COLOURS, SHAPES, gallery
    from embeddings import services
    from embeddings.albums import albums
    from embeddings.index.signal import bump_generation
    from embeddings.models import Album, Embedding, Image
    from embeddings.pipeline import ingest
    from embeddings.search import selectors
    from tests.support import jpeg_bytes

    if connection.introspection.table_names():
        call_command("flush", interactive=False, verbosity=0)
    call_command("migrate", verbosity=0)
    import shutil

    shutil.rmtree(data_dir / "index", ignore_errors=True)
    dim = selectors.model_info()["embedding_dim"]
    rng = np.random.default_rng(0)
    for s in range(0, args.n, 5000):
        m = min(5000, args.n - s)
        v = rng.normal(size=(m, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        images = Image.objects.bulk_create(
            Image(file=f"bulk/{s + i}.jpg", sha256=f"{s + i:064x}", width=1, height=1, format="JPEG", byte_size=1,
                  status="indexed", indexed_at=timezone.now()) for i in range(m))
        Embedding.objects.bulk_create(Embedding(image=im, model_name=settings.MODEL_KEY, vector=x.tobytes())
                                      for im, x in zip(images, v))
    call_command("rebuild_index", stdout=open(os.devnull, "w"))
    selectors.warm_up()
    texts = [f"a {c} {s}" for c in COLOURS for s in SHAPES][: args.albums]
    smart = [albums.create(f"smart {t}", {"q": t}) for t in texts]

    # ---- freshness: a new photo whose vector is the album's query, committed as a worker commits it
    waits = []
    for album, text in list(zip(smart, texts))[:8]:
        vector = selectors.configured_model().embed_texts([text])[0].astype(np.float32)
        im = Image.objects.create(file=f"new/{album.pk}.jpg", sha256=f"new{album.pk:061x}", width=1, height=1,
                                  format="JPEG", byte_size=1, status="indexed", indexed_at=timezone.now())
        Embedding.objects.create(image=im, model_name=settings.MODEL_KEY, vector=vector.tobytes())
        bump_generation(settings.MODEL_KEY)
        t0 = time.perf_counter()
        while im.pk not in {h.image.pk for h in albums.members(album, k=20).hits}:
            if time.perf_counter() - t0 > 30:
                break
            time.sleep(0.02)
        waits.append(time.perf_counter() - t0)

    # ---- reading an album at this size (the cost moved from ingest to reads)
    reads = []
    for album in smart[:20]:
        t0 = time.perf_counter()
        albums.members(album, k=20)
        reads.append((time.perf_counter() - t0) * 1000)

    # ---- naive: every smart album's search per indexed image
    t0 = time.perf_counter()
    for album in smart:
        albums.members(album, k=20)
    naive_per_image_s = time.perf_counter() - t0

    # ---- ours at ingest: real demo images through the real pipeline, with the albums in place
    pictures = [jpeg_bytes(img) for img, _ in gallery(96, seed=5)]
    for i in range(args.ingest):
        services.add_image(pictures[i % 96] + i.to_bytes(3, "big"), f"in{i}.jpg", enqueue=False)
    t0 = time.perf_counter()
    totals = ingest.ingest_pending()
    ingest_s = time.perf_counter() - t0
    out = {"n": args.n, "smart_albums": len(smart), "db": connection.vendor,
           "new_photo_in_album_s": {"max": max(waits), "p50": common.percentile(waits, 50), "all": [round(w, 3) for w in waits]},
           "album_read_ms": {"p50": common.percentile(reads, 50), "max": max(reads)},
           "ingest": {"images": totals["indexed"], "seconds": round(ingest_s, 2),
                      "per_image_ms": round(ingest_s * 1000 / max(totals["indexed"], 1), 2),
                      "album_work_at_ingest_ms": 0.0},
           "naive_album_work_per_image_ms": round(naive_per_image_s * 1000, 1),
           "naive_share_of_ingest": round(naive_per_image_s / (ingest_s / max(totals["indexed"], 1)), 2),
           "albums_total": Album.objects.count(), "machine": common.machine_line(), "load": common.loadavg()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
