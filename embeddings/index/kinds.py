"""The index kinds and their FAISS parameters, chosen by collection size. Pure FAISS + numpy (no Django),
so the benchmarks build exactly what the app builds.

- flat: exact inner product over float32 (2 KB an image at 512-d); small collections.
- ivf-fp16: IVF over fp16 codes (about 1 KB an image), recall@10 near 0.99 at 1M.
- ivf-pq: IVF with 8-bit product-quantised codes (dim/8 bytes, 64 B at 512-d), whose candidates are
  re-ranked exactly from fp16 vectors kept in a memory-mapped file beside the index: the index in
  memory stays near 100 B an image while the re-rank keeps recall@10 at 0.95 or more.
Vectors are L2-normalised, so inner product is cosine similarity.
"""
from __future__ import annotations

import numpy as np

FLAT, IVF, PQ = "flat", "ivf-fp16", "ivf-pq"
KINDS = (FLAT, IVF, PQ)
# From this many vectors `auto` picks ivf-pq (see docs/PERFORMANCE.md, "Index at scale"): below it
# ivf-fp16 is faster and more exact and its ~1 KB an image fits the 1.2 KB budget; above it the
# 300 B an image target needs product-quantised codes.
PQ_THRESHOLD = 2_000_000
MAX_NLIST = 4096  # training k-means past this costs minutes on 2 cores for little recall
TRAIN_PER_LIST = 40  # training points per list (FAISS warns under 39)


def choose_kind(n: int, forced: str = "auto", approx_threshold: int = 50_000) -> str:
    if forced in KINDS:
        return forced
    if n < approx_threshold:
        return FLAT
    return IVF if n < PQ_THRESHOLD else PQ


def nlist_for(n: int) -> int:
    return int(max(1, min(max(4 * np.sqrt(n), 64), n // 39, MAX_NLIST)))


PQ_SCAN_N = 5_000_000 // 3  # past this many vectors ivf-pq probes lists in proportion to n (below)


def nprobe_for(kind: str, nlist: int, n: int = 0) -> int:
    """ivf-fp16: measured 1M recall@10 0.998 at nlist/64; PQ codes rank coarser, so probe twice as many.
    Past the nlist cap the topics of a collection outnumber the lists, and a query's neighbours spread
    over more of them: measured at 5M (4,096 lists, 150 queries) recall@10 0.80 at 128 probes, 0.925 at 256,
    0.975 at 384, 0.989 at 512. So ivf-pq probes nlist/32 * n/PQ_SCAN_N lists there (384 at 5M)."""
    if kind == IVF:
        return min(nlist, max(16, nlist // 64))
    return min(nlist, max(16, nlist // 32, nlist * n // (32 * PQ_SCAN_N)))


def pq_m(dim: int) -> int:
    """Sub-quantisers: 8 dimensions each (64 bytes a vector at 512-d), a divisor of dim."""
    m = max(1, dim // 8)
    while dim % m:
        m -= 1
    return m


def rerank_candidates(k: int) -> int:
    """How many PQ candidates are re-scored exactly for a top-k answer."""
    return max(10 * k, 200)


def needs_training(kind: str) -> bool:
    return kind != FLAT


def train_size(kind: str, n: int) -> int:
    return 0 if kind == FLAT else min(n, TRAIN_PER_LIST * nlist_for(n))


def empty_index(kind: str, dim: int, n: int):
    """An untrained index of this kind sized for n vectors."""
    import faiss

    if kind == FLAT:
        return faiss.IndexFlatIP(dim)
    nlist = nlist_for(n)
    quantizer = faiss.IndexFlatIP(dim)
    if kind == IVF:
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist, faiss.ScalarQuantizer.QT_fp16,
                                              faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFPQ(quantizer, dim, nlist, pq_m(dim), 8, faiss.METRIC_INNER_PRODUCT)
    index.cp.niter = 10  # measured: recall changes by < 0.001 against 25 iterations, training 2.5x faster
    if kind == PQ:  # the sub-quantisers' k-means: fewer points and rounds than FAISS's defaults (64k, 25)
        index.pq.cp.niter, index.pq.cp.max_points_per_centroid = 15, 64
    index.own_fields = True
    quantizer.this.disown()
    return index


def trained_index(kind: str, dim: int, n: int, sample: np.ndarray | None):
    index = empty_index(kind, dim, n)
    if kind != FLAT:
        index.train(np.ascontiguousarray(sample, dtype=np.float32))
        index.nprobe = nprobe_for(kind, index.nlist, n)
    return index


def set_search_params(index, kind: str) -> None:
    """nprobe is not always kept by a memory-mapped read: set it after every load."""
    if kind != FLAT:
        import faiss

        ivf = faiss.extract_index_ivf(index)
        ivf.nprobe = nprobe_for(kind, ivf.nlist, ivf.ntotal)


def build_faiss(vectors: np.ndarray | None, ids: np.ndarray, kind: str, dim: int):
    """An in-memory index of a kind with these ids (the ingest benchmark times it)."""
    import faiss

    n = len(ids)
    sample = None if kind == FLAT else vectors[np.random.default_rng(0).choice(n, train_size(kind, n), replace=False)]
    index = trained_index(kind, dim, n, sample)
    if kind == FLAT:
        index = faiss.IndexIDMap2(index)
    if n:
        index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    return index
