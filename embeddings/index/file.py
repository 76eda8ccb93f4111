"""The index on disk: one folder per model holding generations, and `CURRENT` naming the live one.

A generation is written whole into a temporary folder, renamed, and only then named in `CURRENT`
(replaced atomically), so a reader sees the old generation or the new one, never half of one.
Readers map its files read-only: every web process of a host shares one copy through the page
cache. A replaced generation's files are unlinked at once; processes still mapping them keep
reading them (Linux frees the pages when the last mapping goes). Pure FAISS + numpy, no Django.

    <root>/CURRENT                   {"gen": "g-..."}
    <root>/g-.../index.faiss         FAISS index; labels are row numbers
    <root>/g-.../ids.npy, emb_ids.npy   row -> image id (ascending), row -> Embedding id
    <root>/g-.../vectors.f16         ivf-pq only: fp16 rows for the exact re-rank
    <root>/g-.../meta.json           kind, counts, marks, build time, file sizes
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import time
from pathlib import Path

import numpy as np

from embeddings.index import kinds
from embeddings.index.kinds import PQ

READ_FLAGS = None  # set on first use: importing faiss is slow and not every process needs it


class IndexFileError(Exception):
    """The files are missing pieces, cut short or do not match their metadata."""


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def current_token(root: Path):
    """Changes whenever a new generation is published (CURRENT is replaced, so its inode changes)."""
    try:
        st = os.stat(root / "CURRENT")
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


@contextlib.contextmanager
def build_lock(root: Path, blocking: bool = True):
    """One builder per host: an flock on <root>/.lock (released if the process dies). Yields False
    when not blocking and another process holds it."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


class GenerationWriter:
    """Rows arrive in ascending image id order, in chunks; finish() publishes them."""

    def __init__(self, root: Path, kind: str, dim: int, index):
        import faiss

        self.root, self.kind, self.dim, self.index = root, kind, dim, index
        self.name = f"g-{time.time_ns()}-{os.getpid()}"
        root.mkdir(parents=True, exist_ok=True)
        self.tmp = root / f".building-{self.name}"
        self.tmp.mkdir()
        self.ids, self.emb_ids = [], []
        self.vec_file = open(self.tmp / "vectors.f16", "wb") if kind == PQ else None
        self._faiss = faiss

    def add(self, emb_ids, image_ids, vectors: np.ndarray) -> None:
        if not len(image_ids):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.index.add(vectors)  # labels = row numbers, in order
        self.ids.append(np.asarray(image_ids, dtype=np.int64))
        self.emb_ids.append(np.asarray(emb_ids, dtype=np.int64))
        if self.vec_file is not None:
            self.vec_file.write(vectors.astype(np.float16).tobytes())

    def finish(self, meta: dict) -> dict:
        ids = np.concatenate(self.ids) if self.ids else np.empty(0, np.int64)
        emb_ids = np.concatenate(self.emb_ids) if self.emb_ids else np.empty(0, np.int64)
        if len(ids) > 1 and not np.all(np.diff(ids) > 0):
            raise ValueError("rows must arrive in ascending image id order, each image once")
        if self.vec_file is not None:
            self.vec_file.flush()
            os.fsync(self.vec_file.fileno())
            self.vec_file.close()
        self._faiss.write_index(self.index, str(self.tmp / "index.faiss"))
        np.save(self.tmp / "ids.npy", ids)
        np.save(self.tmp / "emb_ids.npy", emb_ids)
        files = {p.name: p.stat().st_size for p in self.tmp.iterdir()}
        meta = {**meta, "kind": self.kind, "dim": self.dim, "n": int(len(ids)), "files": files,
                "emb_mark": int(emb_ids.max()) if len(emb_ids) else int(meta.get("emb_mark", 0))}
        _write_atomic(self.tmp / "meta.json", json.dumps(meta).encode())
        for p in self.tmp.iterdir():  # data on disk before the name that points at it
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        final = self.root / self.name
        os.rename(self.tmp, final)
        _write_atomic(self.root / "CURRENT", json.dumps({"gen": self.name}).encode())
        for old in self.root.iterdir():  # mapped elsewhere? Linux keeps unlinked files alive for them
            if old.is_dir() and old.name != self.name and old.name.startswith(("g-", ".building-")):
                if old.name.startswith("g-") or time.time() - old.stat().st_mtime > 3600:
                    shutil.rmtree(old, ignore_errors=True)
        return meta

    def abort(self) -> None:
        if self.vec_file is not None:
            self.vec_file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class Snapshot:
    """One published generation, memory-mapped read-only. Searches on it need no lock."""

    def __init__(self, root: Path, gen: str, meta: dict, index, ids, emb_ids, vectors):
        self.root, self.gen, self.meta = root, gen, meta
        self.kind, self.n, self.dim = meta["kind"], int(meta["n"]), int(meta["dim"])
        self.index, self.ids, self.emb_ids, self.vectors = index, ids, emb_ids, vectors
        # What searches keep in memory (shared by the host's processes); the fp16 re-rank rows and
        # the trained copy only for folds are read from disk through the page cache as needed.
        self.bytes = sum(size for name, size in meta["files"].items() if name not in ("vectors.f16", "trained.faiss"))

    @classmethod
    def open(cls, root: Path, dim: int) -> Snapshot | None:
        """The live generation, or None when there is none yet; IndexFileError when it is unusable."""
        import faiss

        try:
            gen = json.loads((root / "CURRENT").read_text())["gen"]
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
            raise IndexFileError(f"CURRENT is unreadable ({exc})") from None
        folder = root / str(gen)
        try:
            meta = json.loads((folder / "meta.json").read_text())
            for name, size in meta["files"].items():  # a short file would fault when mapped: check first
                if (folder / name).stat().st_size != size:
                    raise IndexFileError(f"{name} is {(folder / name).stat().st_size} bytes, not {size}")
            if meta["dim"] != dim:
                raise IndexFileError(f"built for {meta['dim']}-d vectors, not {dim}")
            index = faiss.read_index(str(folder / "index.faiss"), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)
            ids = np.load(folder / "ids.npy", mmap_mode="r")
            emb_ids = np.load(folder / "emb_ids.npy", mmap_mode="r")
            n = int(meta["n"])
            vectors = None
            if meta["kind"] == PQ:
                vectors = np.memmap(folder / "vectors.f16", dtype=np.float16, mode="r", shape=(n, dim)) if n else \
                    np.empty((0, dim), np.float16)
        except IndexFileError:
            raise
        except Exception as exc:  # missing pieces, bad JSON, FAISS refusing the file
            raise IndexFileError(f"generation {gen}: {exc}") from None
        if index.ntotal != n or len(ids) != n or len(emb_ids) != n or index.d != dim:
            raise IndexFileError(f"generation {gen} does not match its metadata")
        kinds.set_search_params(index, meta["kind"])
        if meta["kind"] == kinds.IVF and n:
            # Row -> list position, so that a row's vector can be read back (vectors_at): 8 bytes a row
            # in this process's memory, built once per load from the mapped lists (80 ms at 1M rows, AVX2).
            faiss.extract_index_ivf(index).make_direct_map()
        return cls(root, str(gen), meta, index, ids, emb_ids, vectors)

    def row_of(self, image_ids) -> np.ndarray:
        """Row of each image id, -1 where the file does not hold it."""
        image_ids = np.asarray(image_ids, dtype=np.int64)
        if not self.n:
            return np.full(len(image_ids), -1, np.int64)
        pos = np.minimum(np.searchsorted(self.ids, image_ids), self.n - 1)
        return np.where(self.ids[pos] == image_ids, pos, -1)

    def vectors_at(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors of these rows (fp16 precision for ivf kinds, as their searches score)."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.kind == PQ:
            return np.asarray(self.vectors[rows], dtype=np.float32)
        return self.index.reconstruct_batch(rows)

    def search(self, q: np.ndarray, k: int, alive: np.ndarray, hidden: int):
        """(image ids, scores) best first, skipping rows not alive; `hidden` rows are over-fetched."""
        fetch = min(self.n, k + hidden)
        if fetch <= 0:
            return np.empty(0, np.int64), np.empty(0, np.float32)
        q = np.ascontiguousarray(q, dtype=np.float32).reshape(1, -1)
        if self.kind == PQ:
            # Dead rows are few and scattered: over-fetching by their count (not tenfold) keeps the re-rank small.
            _, labels = self.index.search(q, min(self.n, kinds.rerank_candidates(k) + hidden))
            rows = np.sort(labels[0][labels[0] >= 0])
            rows = rows[alive[rows]]
            scores = self.vectors[rows].astype(np.float32) @ q[0]  # exact re-rank from the fp16 rows
            order = np.argsort(-scores, kind="stable")[:k]
            rows, scores = rows[order], scores[order]
        else:
            scores, labels = self.index.search(q, fetch)
            keep = labels[0] >= 0
            rows, scores = labels[0][keep], scores[0][keep]
            keep = alive[rows]
            rows, scores = rows[keep][:k], scores[keep][:k]
        return np.asarray(self.ids[rows], dtype=np.int64), scores
