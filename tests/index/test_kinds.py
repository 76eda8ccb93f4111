"""The index kinds' size rules (embeddings.index.kinds): which kind a collection gets, and how many
lists a query probes as collections outgrow the list cap (recall measured in docs/PERFORMANCE.md)."""
from embeddings.index import kinds as k


def test_auto_picks_by_size_and_a_forced_kind_wins():
    assert k.choose_kind(10_000) == k.FLAT
    assert k.choose_kind(1_000_000) == k.IVF
    assert k.choose_kind(k.PQ_THRESHOLD) == k.PQ
    assert k.choose_kind(10, forced=k.PQ) == k.PQ


def test_lists_are_capped_and_pq_probes_grow_with_the_collection_past_the_cap():
    assert k.nlist_for(5_000_000) == k.nlist_for(50_000_000) == k.MAX_NLIST
    ivf = [k.nprobe_for(k.IVF, 4096, n) for n in (1_000_000, 5_000_000, 10_000_000)]
    assert ivf == [64, 64, 64]  # ivf-fp16 is not used past 2M: its probes do not follow n
    pq = [k.nprobe_for(k.PQ, 4096, n) for n in (200_000, 5_000_000, 10_000_000, 100_000_000)]
    assert pq[0] == 4096 // 32 and pq[1] == 384 and pq[2] == 2 * pq[1] and pq[3] == 4096
    assert k.nprobe_for(k.PQ, 1788, 200_000) == 55  # the 200k index of the benchmark


def test_a_trained_index_keeps_its_probes_after_a_mapped_read(tmp_path):
    import faiss
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(4000, 16)).astype(np.float32)
    index = k.trained_index(k.PQ, 16, len(x), x)
    index.add(x)
    faiss.write_index(index, str(tmp_path / "i.faiss"))
    again = faiss.read_index(str(tmp_path / "i.faiss"), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
    k.set_search_params(again, k.PQ)
    assert faiss.extract_index_ivf(again).nprobe == k.nprobe_for(k.PQ, index.nlist, len(x))
