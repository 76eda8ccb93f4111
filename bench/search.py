"""Search benchmark: index latency, recall@10 and memory at 10k / 100k (/ 1M with --full) vectors,
text-query encoding, and the real search API end to end; naive beside ours, same data, same run.

Vectors: a clustered mixture like real CLIP embeddings (see `mixture`): 512-d, L2-normalised.
naive: exact `faiss.IndexFlatIP`; text padded to 77 tokens, fp32.
ours:  `build_faiss(vectors, ids, kind_for(n), 512)` with the app's settings (flat below
       APPROX_INDEX_THRESHOLD=50k, IVF over fp16 vectors from there); text through
       `CLIPService.embed_texts` (padded to the longest text only).
Queries: 500 held-out draws from the same mixture, one at a time, k=21 (what the API asks for a
page of 20); recall@10 is against exact search over the same vectors.

    .venv/bin/python bench/search.py [--full] [--sizes 10000,100000] [--api-sizes 10000]
"""
from __future__ import annotations

import argparse
import functools
import gc
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import vitb32  # noqa: E402

DIM = 512
N_QUERIES = 500
K_FETCH = 21  # the API fetches k+1 for a page of k=20
QUERY_TEXT = "a photo of a red car"  # 8 tokens with <|startoftext|> and <|endoftext|>


# ---- data ------------------------------------------------------------------------------------
def mixture(n: int, seed: int = 0, chunk: int = 200_000):
    """Clustered synthetic embeddings, two levels like real image collections.

    x = g + c_k + 0.7*d_s + z, then L2-normalised, where g is one shared direction (CLIP embeddings
    share a large common component), c_k a cluster ("topic") direction, d_s a sub-cluster ("same
    kind of scene") direction, all unit random vectors, and z per-image noise with a power-law
    spectrum (variance of the i-th of 512 random orthogonal directions proportional to 1/i, E|z|^2 = 1),
    as the PCA spectrum of real embeddings decays. n//32 sub-clusters grouped at random into
    n//512 clusters; sub-cluster sizes log-normal (sigma 1), so collections are uneven.
    Measured: cosine ~0.29 between unrelated vectors, ~0.81 to the nearest neighbour and ~0.76 to
    the 10th (at 100k), near what CLIP ViT-B/32 image embeddings show. Returns float32 (n, 512).
    """
    import numpy as np

    out = np.empty((n, DIM), np.float32)
    s = 0
    for x in mixture_chunks(n, seed, chunk):
        out[s:s + len(x)] = x
        s += len(x)
    return out


def mixture_chunks(n: int, seed: int = 0, chunk: int = 200_000):
    """The rows of `mixture(n, seed)`, L2-normalised float32, `chunk` at a time (same draws)."""
    import numpy as np

    rng = np.random.default_rng(seed)

    def unit(m):
        v = rng.standard_normal((m, DIM), dtype=np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    n_sub = max(n // 32, 16)
    n_clu = max(n // 512, 8)
    g = unit(1)[0]
    centres = unit(n_clu)
    subs = unit(n_sub)
    sub_cluster = rng.integers(0, n_clu, n_sub)
    weights = rng.lognormal(0.0, 1.0, n_sub)
    weights /= weights.sum()
    spectrum = 1.0 / np.arange(1, DIM + 1, dtype=np.float32)
    scale = np.sqrt(spectrum / spectrum.sum()).astype(np.float32)
    rotation = np.linalg.qr(rng.standard_normal((DIM, DIM)).astype(np.float32))[0].astype(np.float32)
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        sub = rng.choice(n_sub, m, p=weights)
        x = g + centres[sub_cluster[sub]] + 0.7 * subs[sub]
        x += (rng.standard_normal((m, DIM), dtype=np.float32) * scale) @ rotation
        yield x / np.linalg.norm(x, axis=1, keepdims=True)


def data(n: int):
    """(base vectors, held-out queries) from one mixture draw."""
    allv = mixture(n + N_QUERIES, seed=n)
    return allv[:n], allv[n:].copy()


# ---- index measurements ----------------------------------------------------------------------
def latencies(index, queries, k=K_FETCH):
    import numpy as np

    index.search(queries[:5], k)  # warm
    times, ids = [], np.empty((len(queries), k), np.int64)
    for i, q in enumerate(queries):
        t = time.perf_counter()
        _, found = index.search(q[None, :], k)
        times.append((time.perf_counter() - t) * 1000)
        ids[i] = found[0]
    return times, ids


def recall_at_10(found, exact) -> float:
    return sum(len(set(f[:10]) & set(e[:10])) for f, e in zip(found, exact, strict=True)) / (10 * len(exact))


def measure_size(n: int, wait: bool) -> dict:
    import faiss
    import numpy as np

    from embeddings.index.build import wanted_kind as kind_for
    from embeddings.index.kinds import build_faiss

    t = time.perf_counter()
    base, queries = data(n)
    gen_s = time.perf_counter() - t
    ids = np.arange(1, n + 1, dtype=np.int64)
    sample = base[np.random.default_rng(1).choice(n, 2000, replace=False)]
    stats = {"cos_random": float(np.mean(np.sum(sample[:1000] * sample[1000:], axis=1)))}

    load = common.wait_for_quiet() if wait else common.loadavg()
    gc.collect()
    rss0 = common.rss_mb()
    t = time.perf_counter()
    flat = faiss.IndexFlatIP(DIM)
    flat.add(base)
    flat_build = time.perf_counter() - t
    gc.collect()
    flat_rss = (common.rss_mb() - rss0) * 2**20 / n
    flat_bytes = faiss.serialize_index(flat).nbytes / n

    kind = kind_for(n)
    gc.collect()
    rss1 = common.rss_mb()
    t = time.perf_counter()
    ours = build_faiss(base, ids, kind, DIM)
    ours_build = time.perf_counter() - t
    gc.collect()
    ours_rss = (common.rss_mb() - rss1) * 2**20 / n
    ours_bytes = faiss.serialize_index(ours).nbytes / n

    t_flat, exact = latencies(flat, queries)
    exact_ids = exact + 1  # flat ids are positions; ours are positions + 1
    t_ours, found = latencies(ours, queries)
    stats["cos_nn"] = float(np.mean(flat.search(queries[:100], 1)[0]))
    rec = recall_at_10(found, exact_ids)
    params = ""
    if kind != "flat":
        ivf = faiss.extract_index_ivf(ours)
        params = f"nlist={ivf.nlist}, nprobe={ivf.nprobe}"
    out = {
        "n": n, "kind": kind, "params": params, "gen_s": gen_s, "load": load, "load_after": common.loadavg(),
        "naive": {"build_s": flat_build, "p50": common.percentile(t_flat, 50), "p99": common.percentile(t_flat, 99),
                  "recall": 1.0, "bytes": flat_bytes, "rss_bytes": flat_rss},
        "ours": {"build_s": ours_build, "p50": common.percentile(t_ours, 50), "p99": common.percentile(t_ours, 99),
                 "recall": rec, "bytes": ours_bytes, "rss_bytes": ours_rss},
        **stats,
    }
    if kind != "flat":
        out["nprobe_sweep"] = nprobe_sweep(ours, queries, exact_ids)
    del flat, ours, base
    gc.collect()
    return out


def nprobe_sweep(index, queries, exact_ids) -> list[tuple[int, float, float, float]]:
    """Recall and latency of the same IVF index at other nprobe values (what a formula change buys)."""
    import faiss

    ivf = faiss.extract_index_ivf(index)
    keep = ivf.nprobe
    rows = []
    for nprobe in sorted({max(1, keep // 8), max(1, keep // 4), max(1, keep // 2), keep, keep * 2}):
        ivf.nprobe = nprobe
        t, found = latencies(index, queries[:200])
        rows.append((nprobe, recall_at_10(found, exact_ids[:200]), common.percentile(t, 50), common.percentile(t, 99)))
    ivf.nprobe = keep
    return rows


# ---- text query encoding ---------------------------------------------------------------------
def text_encoding(model_dir, runs=40) -> dict:
    import torch
    from transformers import AutoTokenizer, CLIPModel

    from embeddings.clip.service import CLIPService

    def p50(fn):
        for _ in range(3):
            fn()
        times = []
        for _ in range(runs):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1000)
        return common.percentile(times, 50), common.percentile(times, 99)

    tok = AutoTokenizer.from_pretrained(model_dir)
    n_tokens = len(tok(QUERY_TEXT)["input_ids"])
    model = CLIPModel.from_pretrained(model_dir, dtype=torch.float32).eval()

    def naive():
        t = tok([QUERY_TEXT], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            f = model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).pooler_output
        return torch.nn.functional.normalize(f, dim=-1)

    out = {"tokens": n_tokens, "naive": p50(naive)}
    ref = naive().numpy()[0]
    for prec in ("auto", "bf16"):
        svc = CLIPService(model_name=str(model_dir), precision=prec)
        out[f"ours_{prec}"] = p50(functools.partial(svc.embed_texts, [QUERY_TEXT]))
        out[f"ours_{prec}_precision"] = svc.load().precision
        out[f"ours_{prec}_cos"] = float(svc.embed_texts([QUERY_TEXT])[0] @ ref)
    model = None  # frees it (naive() holds the same variable) before the collection
    gc.collect()
    return out


# ---- the real API end to end -----------------------------------------------------------------
def populate(vectors, model_key: str, batch: int = 5000) -> None:
    """Fill the (migrated, empty) bench database with indexed Image rows and their Embeddings."""
    from django.db import transaction
    from django.utils import timezone

    from embeddings.models import Embedding, Image

    now = timezone.now()
    for s in range(0, len(vectors), batch):
        with transaction.atomic():
            Image.objects.bulk_create([
                Image(id=i + 1, file=f"images/bench/{i + 1}.jpg", original_filename=f"bench_{i + 1}.jpg",
                      sha256=f"{i + 1:064x}", width=640, height=480, format="JPEG", byte_size=100_000,
                      status=Image.Status.INDEXED, indexed_at=now)
                for i in range(s, min(s + batch, len(vectors)))
            ])
            Embedding.objects.bulk_create([
                Embedding(image_id=i + 1, model_name=model_key, vector=vectors[i].tobytes())
                for i in range(s, min(s + batch, len(vectors)))
            ])


def fresh_database(data_dir: Path) -> None:
    """Drop the bench database and index files under data_dir and migrate a new one."""
    from django.core.management import call_command
    from django.db import connections

    connections.close_all()
    for p in list(data_dir.glob("db.sqlite3*")):
        p.unlink()
    shutil.rmtree(data_dir / "index", ignore_errors=True)
    call_command("migrate", verbosity=0, interactive=False)


QUERY_WORDS = (["red", "blue", "green", "old", "small", "large", "shiny", "wooden", "white", "dark"],
               ["car", "dog", "house", "boat", "bicycle", "cat", "tree", "bridge", "guitar", "lamp"],
               ["street", "beach", "garden", "forest", "kitchen", "river", "city", "field", "table", "snow"])


def distinct_queries(count: int) -> list[str]:
    a, b, c = QUERY_WORDS
    return [f"a {a[i % 10]} {b[(i // 10) % 10]} in the {c[(i // 100) % 10]}" for i in range(count)]


def api_end_to_end(n: int, requests: int = 200, wait: bool = True) -> dict:
    """Time GET /api/search through Django's test client on a populated SQLite database."""
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from embeddings.index.vector_index import reset_indexes
    from embeddings.search import selectors

    redis_started = start_redis()
    base, _ = data(n)
    fresh_database(common.DATA_DIR)
    t = time.perf_counter()
    populate(base, settings.MODEL_KEY)
    populate_s = time.perf_counter() - t
    del base
    reset_indexes()
    selectors._text_vector.cache_clear()
    from django.core.management import call_command

    # The index file a worker (or the operator) builds; without it the web process would serve flat
    # from memory while building the file in a thread, and time that instead of its searches.
    call_command("rebuild_index", stdout=open(os.devnull, "w"))
    t = time.perf_counter()
    selectors.warm_up()  # what clipsearch.wsgi does: model + index from the database
    warm_s = time.perf_counter() - t
    client = Client()
    r = client.get("/api/search", {"q": "a red car", "k": 20})
    assert r.status_code == 200, (r.status_code, r.content[:300])
    # The default relevance cutoff ends a page of random vectors early; the work is the same.
    assert r.json()["results"], r.json()

    # one DB query as the search makes it: 21 ids
    from embeddings.models import Image

    ids = list(range(1, 22))
    db_times = []
    for _ in range(100):
        t0 = time.perf_counter()
        list(Image.objects.filter(pk__in=ids, status=Image.Status.INDEXED))
        db_times.append((time.perf_counter() - t0) * 1000)

    load = common.wait_for_quiet() if wait else common.loadavg()

    def run(queries):
        times = []
        for q in queries:
            t0 = time.perf_counter()
            resp = client.get("/api/search", {"q": q, "k": 20})
            times.append((time.perf_counter() - t0) * 1000)
            assert resp.status_code == 200, resp.content[:300]
        return times

    same = run(["a red car"] * requests)  # text vector cached after the first: index + DB + framework
    selectors._text_vector.cache_clear()
    fresh = run(distinct_queries(requests))  # every request encodes its text
    connection.close()
    if redis_started:
        stop_redis()
    return {
        "n": n, "populate_s": populate_s, "warm_s": warm_s, "load": load, "load_after": common.loadavg(),
        "db_p50": common.percentile(db_times, 50),
        "cached": (common.percentile(same, 50), common.percentile(same, 99)),
        "uncached": (common.percentile(fresh, 50), common.percentile(fresh, 99)),
        "requests": requests, "redis": redis_started,
    }


def start_redis() -> bool:
    """The app's embedded Redis under the bench data folder (the web process reads a counter there)."""
    try:
        from django.conf import settings

        from clipsearch import embedded_redis

        if settings.REDIS_EMBEDDED:
            embedded_redis.start(settings.DATA_DIR)
            return True
    except Exception as exc:  # noqa: BLE001 - the API still works without Redis
        print(f"  (no Redis for the API run: {exc})", file=sys.stderr)
    return False


def stop_redis() -> None:
    from django.conf import settings

    from clipsearch import embedded_redis

    embedded_redis.stop(settings.DATA_DIR)


# ---- report ----------------------------------------------------------------------------------
def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="also 1M vectors (about 6 GB RAM, several minutes)")
    ap.add_argument("--sizes", help="comma-separated collection sizes (default 10000,100000; --full adds 1000000)")
    ap.add_argument("--api-sizes", help="sizes for the end-to-end API run (default 10000; --full 10000,100000)")
    ap.add_argument("--no-text", action="store_true", help="skip the text-encoding and API measurements")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = ap.parse_args(argv)
    if args.sizes:
        sizes = [int(s) for s in args.sizes.split(",")]
    else:
        sizes = [10_000, 100_000] + ([1_000_000] if args.full else [])
    api_sizes = ([int(s) for s in args.api_sizes.split(",") if s] if args.api_sizes is not None
                 else [10_000] + ([100_000] if args.full else []))
    wait = not args.no_wait

    model_dir = vitb32.ensure()
    common.setup_django(model_dir)
    from django.conf import settings

    results = []
    for n in sizes:
        print(f"  search: {n:,} vectors...", file=sys.stderr, flush=True)
        results.append(measure_size(n, wait))
    text = None if args.no_text else text_encoding(model_dir)
    api = [] if args.no_text else [api_end_to_end(n, wait=wait) for n in api_sizes]

    headers = ["vectors", "pipeline", "index", "build s", "p50 ms", "p99 ms", "recall@10", "index B/image",
               "RSS growth B/image"]
    rows = []
    for r in results:
        rows.append([r["n"], "naive", "flat", r["naive"]["build_s"], r["naive"]["p50"], r["naive"]["p99"], 1.0,
                     r["naive"]["bytes"], r["naive"]["rss_bytes"]])
        o = r["ours"]
        rows.append([r["n"], "ours", r["kind"] + (f" ({r['params']})" if r["params"] else ""), o["build_s"], o["p50"],
                     o["p99"], f"{o['recall']:.4f}", o["bytes"], o["rss_bytes"]])
    out = {"title": "Search: index only (single queries, k=21)", "headers": headers, "rows": rows,
           "sizes": results, "text": text, "api": api, "threshold": settings.APPROX_INDEX_THRESHOLD}
    print(f"\n## {out['title']}\n")
    print("load avg per size: " + ", ".join(f"{r['n']:,}: {r['load']:.2f}->{r['load_after']:.2f}" for r in results))
    print("mixture check: " + ", ".join(f"{r['n']:,}: cos unrelated {r['cos_random']:.2f}, cos to nearest "
                                         f"{r['cos_nn']:.2f}" for r in results) + "\n")
    print(common.table(headers, rows))
    sweeps = [r for r in results if "nprobe_sweep" in r]
    if sweeps:
        out["sweep_headers"] = ["vectors", "nprobe", "recall@10", "p50 ms", "p99 ms"]
        out["sweep_rows"] = [[r["n"], p, f"{rec:.4f}", a, b] for r in sweeps for p, rec, a, b in r["nprobe_sweep"]]
        print("\nIVF nprobe sweep (same index, 200 queries):\n")
        print(common.table(out["sweep_headers"], out["sweep_rows"]))
    if text:
        out["text_headers"] = [f"text query ({text['tokens']} tokens)", "p50 ms", "p99 ms", "cosine to naive"]
        out["text_rows"] = [
            ["naive: fp32, padded to 77", *text["naive"], "1"],
            [f"ours: auto -> {text['ours_auto_precision']}, no padding", *text["ours_auto"],
             f"{text['ours_auto_cos']:.5f}"],
            [f"ours: bf16 forced -> {text['ours_bf16_precision']}", *text["ours_bf16"], f"{text['ours_bf16_cos']:.5f}"],
        ]
        print("\n" + common.table(out["text_headers"], out["text_rows"]))
        db = api[0]["db_p50"] if api else 1.0
        out["estimate_headers"] = ["vectors", "pipeline", "text p50 ms", "index p50 ms", "DB query ms",
                                   "estimate p50 ms", "index p99 ms", "estimate p99 ms"]
        out["estimate_rows"] = []
        for r in results:
            for who, tk in (("naive", "naive"), ("ours", "ours_auto")):
                t50, t99 = text[tk]
                i50, i99 = r[who]["p50"], r[who]["p99"]
                out["estimate_rows"].append([r["n"], who, t50, i50, db, t50 + i50 + db, i99, t99 + i99 + db])
        print("\nSearch API estimate = text encode + index search + one DB query:\n")
        print(common.table(out["estimate_headers"], out["estimate_rows"]))
    if api:
        out["api_headers"] = ["vectors in DB", "GET /api/search (k=20)", "requests", "p50 ms", "p99 ms"]
        out["api_rows"] = []
        for a in api:
            out["api_rows"].append([a["n"], "same query (text vector cached)", a["requests"], *a["cached"]])
            out["api_rows"].append([a["n"], "distinct queries (text encoded)", a["requests"], *a["uncached"]])
        print("\nReal API end to end (Django test client, SQLite, ours only):\n")
        print("; ".join(f"{a['n']:,}: populate {a['populate_s']:.1f} s, warm-up {a['warm_s']:.1f} s, DB query p50 "
                        f"{a['db_p50']:.2f} ms, load {a['load']:.2f}->{a['load_after']:.2f}, redis {a['redis']}"
                        for a in api))
        print(common.table(out["api_headers"], out["api_rows"]))
    return out


if __name__ == "__main__":
    main()
