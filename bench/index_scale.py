"""Index at scale: the app's index file (built by index_build's code path, mapped read-only by every
web process) beside the naive index (today's exact flat index, one whole copy per process), at 1M
and 5M synthetic 512-d vectors of bench/search.py's mixture.

For each size and kind: build time; time from a fresh process's start to its first answer;
p50/p99 of single queries (k=21, one FAISS thread, as a web process); recall@10 against exact
search; RSS and USS (private part) of a first and two extra processes mapping the same file at once.

Memory stays low: vectors go in chunks to an fp16 file under var/bench/scale/ (both sides index it
as float32); exact ground truth is computed in chunks for a few hundred queries.

    .venv/bin/python bench/index_scale.py [--sizes 1000000,5000000] [--kinds auto,ivf-fp16,ivf-pq]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

DIM, K_FETCH, CHUNK = 512, 21, 100_000
SCALE_DIR = common.BENCH_DIR / "scale"


def mixture_to_file(n: int, n_queries: int, seed: int = 0):
    """bench/search.py's mixture (same recipe), generated in chunks into an fp16 file; the queries
    are held-out draws of the same mixture. Returns (memmap of n rows, float32 queries)."""
    import numpy as np

    path = SCALE_DIR / f"mixture-{n}-{seed}.f16"
    total = n + n_queries
    if not path.exists() or path.stat().st_size != total * DIM * 2:
        SCALE_DIR.mkdir(parents=True, exist_ok=True)
        from search import mixture_chunks  # bench/ is on the path: scripts run from it

        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            for x in mixture_chunks(total, seed, CHUNK):
                f.write(x.astype(np.float16).tobytes())
        os.replace(tmp, path)
    allv = np.memmap(path, dtype=np.float16, mode="r", shape=(total, DIM))
    return allv[:n], np.asarray(allv[n:], dtype=np.float32)


def exact_top(base, queries, k=10):
    """Exact top-k ids (row numbers) of each query, in chunks of the base."""
    import numpy as np

    best_s = np.full((len(queries), k), -np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    for s in range(0, len(base), CHUNK):
        sc = queries @ np.asarray(base[s:s + CHUNK], dtype=np.float32).T
        cand_s = np.concatenate([best_s, sc], axis=1)
        cand_i = np.concatenate([best_i, np.arange(s, s + sc.shape[1])[None, :].repeat(len(queries), 0)], axis=1)
        top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
        best_s, best_i = np.take_along_axis(cand_s, top, 1), np.take_along_axis(cand_i, top, 1)
    order = np.argsort(-best_s, axis=1)
    return np.take_along_axis(best_i, order, 1)


def build_ours(base, kind: str, root: Path) -> float:
    """The app's build path (index_kinds + index_file.GenerationWriter), rows = ids 1..n."""
    import numpy as np

    from embeddings.index import kinds
    from embeddings.index.file import GenerationWriter

    n = len(base)
    t = time.perf_counter()
    sample = None
    if kind != kinds.FLAT:
        rows = np.sort(np.random.default_rng(0).choice(n, kinds.train_size(kind, n), replace=False))
        sample = np.asarray(base[rows], dtype=np.float32)
    index = kinds.trained_index(kind, DIM, n, sample)
    train_s = time.perf_counter() - t
    writer = GenerationWriter(root, kind, DIM, index)
    for s in range(0, n, CHUNK):
        ids = np.arange(s + 1, min(s + CHUNK, n) + 1, dtype=np.int64)
        writer.add(ids, ids, np.asarray(base[s:s + CHUNK], dtype=np.float32))
    writer.finish({"built_at": "bench", "tomb_mark": 0, "trained_n": n, "build_ms": 0})
    return time.perf_counter() - t, train_s


def build_naive(base, path: Path) -> float:
    import faiss
    import numpy as np
    t = time.perf_counter()
    index = faiss.IndexFlatIP(DIM)
    for s in range(0, len(base), CHUNK):
        index.add(np.asarray(base[s:s + CHUNK], dtype=np.float32))
    build_s = time.perf_counter() - t
    faiss.write_index(index, str(path))  # what a naive process loads whole at start
    return build_s


CHILD = r"""
import json, sys, time, psutil
start = psutil.Process().create_time()
sys.path.insert(0, {root!r})
import numpy as np, faiss
faiss.omp_set_num_threads(1)  # as clipsearch.wsgi does
queries = np.load({queries!r})
if {naive!r}:
    index = faiss.read_index({path!r})  # today's: the whole index in this process's memory
    search = lambda q: index.search(q.reshape(1, -1), {k})[1][0]
else:
    from pathlib import Path
    from embeddings.index.file import Snapshot
    snap = Snapshot.open(Path({path!r}), {dim})
    alive = np.ones(snap.n, bool)
    search = lambda q: snap.search(q, {k}, alive, 0)[0] - 1  # image ids are rows + 1
first = search(queries[0])
ready = time.time() - start
lat, found = [], []
for q in queries:
    t = time.perf_counter()
    r = search(q)
    lat.append((time.perf_counter() - t) * 1000)
    found.append([int(x) for x in r[:10]])
m = psutil.Process().memory_full_info()
print(json.dumps({{"ready_s": ready, "lat": lat, "found": found, "rss": m.rss, "uss": m.uss, "pss": m.pss}}), flush=True)
sys.stdin.read()  # stay alive (and mapped) until the parent has measured every process
"""


def processes(path: Path, queries_file: Path, naive: bool, count: int = 3) -> list[dict]:
    """Start `count` processes one after another, each kept alive; memory measured with all running."""
    import psutil
    code = CHILD.format(root=str(common.ROOT), queries=str(queries_file), naive=naive, path=str(path), k=K_FETCH,
                        dim=DIM)
    procs, out = [], []
    for _ in range(count):
        p = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        out.append(json.loads(p.stdout.readline()))
        procs.append(p)
        time.sleep(1)
    for p, o in zip(procs, out):
        m = psutil.Process(p.pid).memory_full_info()
        o.update(rss_all=m.rss, uss_all=m.uss, pss_all=m.pss)  # with all `count` processes alive
    for p in procs:
        p.stdin.close()
        p.wait(timeout=120)
    return out


def measure(n: int, kinds: list[str], n_queries: int, naive: bool, reuse: bool = False) -> list[dict]:
    import numpy as np

    from embeddings.index import kinds
    t = time.perf_counter()
    base, queries = mixture_to_file(n, n_queries)
    gen_s = time.perf_counter() - t
    qfile = SCALE_DIR / f"queries-{n}.npy"
    np.save(qfile, queries)
    t = time.perf_counter()
    exact = exact_top(base, queries).tolist()
    print(f"  {n:,}: data {gen_s:.0f} s, exact top-10 of {n_queries} queries {time.perf_counter() - t:.0f} s",
          file=sys.stderr, flush=True)
    rows = []
    if naive:
        path = SCALE_DIR / f"naive-{n}.faiss"
        load = common.loadavg()
        build_s = build_naive(base, path)
        procs = processes(path, qfile, naive=True)
        rows.append(summary(n, "naive", "flat (whole copy per process)", build_s, None, procs, exact, load,
                            path.stat().st_size))
        path.unlink()
    for kind in kinds:
        kind = kinds.choose_kind(n) if kind == "auto" else kind
        root = SCALE_DIR / f"ours-{n}-{kind}"
        load = common.loadavg()
        if reuse and (root / "CURRENT").exists():  # measured before: the build's own figures are in its results
            build_s, train_s = None, None
        else:
            print(f"  {n:,}: building {kind} (load {load:.1f})...", file=sys.stderr, flush=True)
            build_s, train_s = build_ours(base, kind, root)
        snap = __import__("embeddings.index.file", fromlist=["Snapshot"]).Snapshot.open(root, DIM)
        ivf = __import__("faiss").extract_index_ivf(snap.index) if kind != "flat" else None
        params = f"nlist={ivf.nlist}, nprobe={ivf.nprobe}" if ivf else ""
        if kind == kinds.PQ:
            params += f", M={kinds.pq_m(DIM)}, re-rank {kinds.rerank_candidates(K_FETCH)}"
        procs = processes(root, qfile, naive=False)
        rows.append(summary(n, "ours", f"{kind} ({params})", build_s, train_s, procs, exact, load, snap.bytes,
                            disk=sum(p.stat().st_size for p in (root / snap.gen).iterdir())))
    return rows


def summary(n, who, index, build_s, train_s, procs, exact, load, index_bytes, disk=None) -> dict:
    import numpy as np

    lat = np.concatenate([p["lat"] for p in procs])
    hits = sum(len(set(f[:10]) & set(e[:10])) for f, e in zip(procs[0]["found"], exact))
    mb = 2**20
    return {"n": n, "who": who, "index": index, "build_s": build_s, "train_s": train_s, "load": load,
            "load_after": common.loadavg(), "ready_s": [p["ready_s"] for p in procs],
            "p50": common.percentile(lat, 50), "p99": common.percentile(lat, 99), "recall": hits / (10 * len(exact)),
            "index_b_per_image": index_bytes / n, "disk_b_per_image": (disk or index_bytes) / n,
            "rss_mb": [p["rss_all"] / mb for p in procs], "uss_mb": [p["uss_all"] / mb for p in procs],
            "pss_mb": [p["pss_all"] / mb for p in procs]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000000,5000000")
    ap.add_argument("--kinds", default="auto", help="comma-separated: auto (the app's choice), flat, ivf-fp16, ivf-pq")
    ap.add_argument("--queries", type=int, default=300)
    ap.add_argument("--naive-max", type=int, default=1_000_000, help="largest size at which to run naive processes "
                    "(each holds 2 KB an image: 10 GB at 5M)")
    ap.add_argument("--reuse", action="store_true", help="measure (not build) an index an earlier run built, "
                    "e.g. after changing search parameters; its build time is in that run's results")
    ap.add_argument("--out", default=str(common.RESULTS_DIR / "index-scale.json"))
    args = ap.parse_args(argv)
    import faiss

    # One builder thread, as a worker's (measured at load 9: 2 OpenMP threads trained 3-4x slower).
    faiss.omp_set_num_threads(1)
    print(common.machine_line(), file=sys.stderr)
    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        rows += measure(n, args.kinds.split(","), args.queries, naive=n <= args.naive_max, reuse=args.reuse)
        Path(args.out).write_text(json.dumps({"machine": common.machine_line(), "rows": rows}, indent=1))
    headers = ["vectors", "pipeline", "index", "build s", "first answer s (3 procs)", "p50 ms", "p99 ms", "recall@10",
               "index B/image", "RSS MB (1st, 2nd, 3rd)", "USS MB (1st, 2nd, 3rd)", "load"]
    table = [[r["n"], r["who"], r["index"], r["build_s"], " / ".join(f"{x:.2f}" for x in r["ready_s"]), r["p50"],
              r["p99"], f"{r['recall']:.4f}", r["index_b_per_image"], " / ".join(f"{x:,.0f}" for x in r["rss_mb"]),
              " / ".join(f"{x:,.0f}" for x in r["uss_mb"]), f"{r['load']:.1f}->{r['load_after']:.1f}"] for r in rows]
    print(common.machine_line())
    print(common.table(headers, table))


if __name__ == "__main__":
    main()
