"""Searches while two workers encode: the longest search a web process serves while new images
arrive, on PostgreSQL with a collection of synthetic vectors (the demo model's size) plus new
demo images encoded by two real `rqworker` processes.

naive: the code before the shared index (pass `--app-root` a checkout of it, e.g.
`git archive c7c5d31 | tar -x -C /tmp/head`): one in-memory index per process, caught up by
watermarks, a full rebuild under the search lock when rows commit out of id order.
ours: this tree (the mapped file, the delta, gap-safe catch-up).

    .venv/bin/python bench/index_ingest.py --database-url postgres://postgres@127.0.0.1:5432/bench_ingest \\
        --redis-url redis://127.0.0.1:6379/9 [--n 200000] [--new 384] [--app-root DIR]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--redis-url", required=True)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--new", type=int, default=384)
    ap.add_argument("--app-root", default=str(Path(__file__).resolve().parent.parent))
    ap.add_argument("--label", default="ours")
    args = ap.parse_args(argv)
    root = Path(args.app_root).resolve()
    data_dir = Path(f"/tmp/bench-ingest-{args.label}")
    env = {**os.environ, "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url, "CLIP_MODEL_NAME": "demo",
           "CLIPSEARCH_DATA_DIR": str(data_dir), "CLIPSEARCH_SEARCH_RATE": "0", "CLIPSEARCH_OCR": "false",
           "DJANGO_SETTINGS_MODULE": "clipsearch.settings", "PYTHONUNBUFFERED": "1", "CLIPSEARCH_INGEST_BATCH_SIZE": "16"}
    os.environ.update(env)
    sys.path.insert(0, str(root))
    sys.path.insert(1, str(Path(__file__).resolve().parent))
    import common
    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from embeddings import services
    from embeddings.index.vector_index import get_index
    from embeddings.models import Embedding, Image
    from embeddings.search import selectors

    call_command("flush", interactive=False, verbosity=0) if connection.introspection.table_names() else None
    call_command("migrate", verbosity=0)
    import shutil

    shutil.rmtree(data_dir / "index", ignore_errors=True)
    from django.conf import settings

    dim = selectors.model_info()["embedding_dim"]
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    for s in range(0, args.n, 5000):
        m = min(5000, args.n - s)
        v = rng.normal(size=(m, dim)).astype(np.float32)
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        images = Image.objects.bulk_create(
            Image(file=f"bulk/{s + i}.jpg", sha256=f"{s + i:064x}", width=1, height=1, format="JPEG", byte_size=1,
                  status="indexed", indexed_at=timezone.now()) for i in range(m))
        Embedding.objects.bulk_create(Embedding(image=im, model_name=settings.MODEL_KEY, vector=x.tobytes())
                                      for im, x in zip(images, v))
    populate_s = time.perf_counter() - t
    t = time.perf_counter()
    call_command("rebuild_index", stdout=open(os.devnull, "w"))  # the file a worker (or the operator) built
    build_s = time.perf_counter() - t
    t = time.perf_counter()
    selectors.warm_up()  # a web process's start: the model and the index
    warm_s = time.perf_counter() - t
    index = get_index(settings.MODEL_KEY, dim)
    from demo.synth import gallery
    from tests.support import jpeg_bytes

    pictures = [jpeg_bytes(img) for img, _ in gallery(96, seed=5)]
    new = {services.add_image(pictures[i % 96] + i.to_bytes(2, "big"), f"new{i}.jpg", enqueue=False).pk
           for i in range(args.new)}
    queries = [np.frombuffer(bytes(b), np.float32) for b in Embedding.objects.values_list("vector", flat=True)[:200]]
    load = common.loadavg()
    workers = [subprocess.Popen([sys.executable, "manage.py", "rqworker", settings.RQ_QUEUE], cwd=root, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
    lat, first_new, done_at = [], None, None
    deadline = time.time() + 900
    try:
        while time.time() < deadline:
            q = queries[len(lat) % len(queries)]
            t0 = time.perf_counter()
            selectors.search(q, k=20)
            lat.append((time.perf_counter() - t0) * 1000)
            indexed = Image.objects.filter(pk__in=new, status="indexed").count()
            if indexed and first_new is None:
                first_new = len(lat)
            if indexed == len(new):
                done_at = done_at or time.time()
                if time.time() - done_at > 3:
                    break
            time.sleep(0.2)
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=60)
    during = lat[first_new or 0:]
    stats = index.stats()
    out = {"label": args.label, "n": args.n, "new": args.new, "populate_s": populate_s, "build_s": build_s, "warm_s": warm_s,
           "searches": len(during), "p50": common.percentile(during, 50), "p99": common.percentile(during, 99),
           "max": max(during), "rebuilds": stats.get("rebuilds"), "kind": stats["kind"], "load": load,
           "load_after": common.loadavg(), "machine": common.machine_line()}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
