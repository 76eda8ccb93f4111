"""CLIPService: sync methods for Django and RQ, async ones compatible with the seed's API.

One loaded model per (model, device, precision, engine) per process (clip.loading), shared by every
CLIPService. Embeddings are float32, L2-normalised, whatever precision the model runs in.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import NamedTuple

import numpy as np
import psutil
import torch
from PIL import Image

from embeddings.clip import loading
from embeddings.clip.config import VALIDATED_CONFIG, is_demo_model
from embeddings.clip.device import choose_device, choose_engine, choose_precision
from embeddings.clip.preprocessing import open_image
from embeddings.clip.vectors import cosine

logger = logging.getLogger("embeddings.clip")


OnDecoded = Callable[[int, Image.Image], None]


class SafeBatch(NamedTuple):
    embeddings: np.ndarray  # (len(indices), dim), rows in the order of `indices`
    indices: list[int]  # positions in the input that were encoded
    errors: dict[int, str]  # position -> why that item was skipped


class CLIPService:
    def __init__(self, model_name=None, batch_size=32, max_workers=4, gpu_memory_threshold=2.0,
                 enable_caching=True, fallback_to_cpu=True, log_level="INFO", device="auto", precision="auto",
                 draft=True, engine="auto"):
        self.model_name = model_name or VALIDATED_CONFIG["model_name"]
        self.batch_size, self.max_workers = int(batch_size), int(max_workers)
        self.gpu_memory_threshold, self.enable_caching = float(gpu_memory_threshold), enable_caching
        self.fallback_to_cpu, self.requested_device, self.requested_precision = fallback_to_cpu, device, precision
        self.requested_engine = engine  # auto: ONNX Runtime on the CPU, torch on CUDA (clip.device.choose_engine)
        self.draft = draft  # JPEG draft decoding on the ingest path; False gives exact processor parity
        logger.setLevel(str(log_level).upper())
        self._loaded = None
        self._lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------------
    def _acquire(self, device: str):
        engine = choose_engine(self.requested_engine, device, self.requested_precision)
        if engine == "onnx" and device == "cuda":
            logger.warning("CLIP_ENGINE=onnx runs on the CPU (this ONNX Runtime build has no CUDA); using the CPU")
            device = "cpu"
        precision = choose_precision(self.requested_precision, device, engine)
        return loading.acquire(self.model_name, device, precision, cached=self.enable_caching, engine=engine)

    def load(self):
        if self._loaded is None:
            with self._lock:
                if self._loaded is None:
                    device = choose_device(self.requested_device, self.gpu_memory_threshold, self.fallback_to_cpu)
                    self._loaded = self._acquire(device)
        return self._loaded

    @property
    def dim(self) -> int:
        return self.load().dim

    @property
    def device(self) -> str:
        return self.load().device

    def warmup(self) -> None:
        self.embed_texts(["warm up"])
        self._run(lambda m: m.image_features(np.zeros((1, 3, *m.preprocessor.crop), np.float32)))

    def _run(self, fn):
        """Run fn(loaded) and on CUDA out-of-memory retry once on the CPU when allowed."""
        lm = self.load()
        try:
            return fn(lm)
        except torch.cuda.OutOfMemoryError:
            if not (self.fallback_to_cpu and lm.device == "cuda"):
                raise
            logger.warning("CUDA out of memory while encoding; moving CLIP model %s to the CPU", self.model_name)
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
            with self._lock:
                self._loaded = self._acquire("cpu")
            return fn(self._loaded)

    # -- public sync API -----------------------------------------------------------------------
    def embed_texts(self, texts: list[str], batch_size: int | None = None) -> np.ndarray:
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                where = f"text item {i}" if len(texts) > 1 else "text"
                raise ValueError(f"{where} is empty or not a string; enter some words to search for")
        bs = batch_size or self.batch_size
        # Sorting by length keeps similar lengths together, so little padding per batch.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), np.float32)
        for s in range(0, len(order), bs):
            idx = order[s:s + bs]
            batch = [texts[i] for i in idx]
            out[idx] = self._run(lambda lm, batch=batch: lm.text_features(batch))
        return out

    def _prepare(self, lm, source, out: np.ndarray, index: int = 0, on_decoded: OnDecoded | None = None) -> None:
        pre = lm.preprocessor
        image = open_image(source, draft=self.draft, target=pre.target)
        if on_decoded is not None:
            # The caller's use of the picture (the OCR first look keeps a small copy: no second
            # decode) never costs the item its encoding.
            try:
                on_decoded(index, image)
            except Exception:
                logger.exception("on_decoded failed for image item %d; encoding it anyway", index)
        pre.to_array(pre.resize_crop(image), out)

    def _batches(self, sources: list, batch_size: int | None, on_decoded: OnDecoded | None = None):
        """Yield (indices, pixel array, errors) per batch; batch k+1 decodes while k is encoded."""
        lm, bs = self.load(), batch_size or self.batch_size
        chunks = [list(range(s, min(s + bs, len(sources)))) for s in range(0, len(sources), bs)]
        shape = (3, *lm.preprocessor.crop)

        def submit(pool, chunk):
            buf = np.empty((len(chunk), *shape), np.float32)
            return buf, [pool.submit(self._prepare, lm, sources[i], buf[j], i, on_decoded) for j, i in enumerate(chunk)]

        with ThreadPoolExecutor(max_workers=self.max_workers) as pool:
            pending = submit(pool, chunks[0]) if chunks else None
            for k, chunk in enumerate(chunks):
                buf, futures = pending
                pending = submit(pool, chunks[k + 1]) if k + 1 < len(chunks) else None
                errors, ok = {}, []
                # Wait outside any try: an exception raised in this thread while waiting (a job
                # timeout's signal, KeyboardInterrupt) must stop the batch, not blame an item.
                wait(futures)
                for j, (i, f) in enumerate(zip(chunk, futures)):
                    e = f.exception()
                    if e is None:
                        ok.append(j)
                    else:  # any decoder failure in a worker thread is that item's fault
                        errors[i] = str(e) if isinstance(e, ValueError) else f"cannot read image: {e}"
                pixels = buf if len(ok) == len(chunk) else buf[ok]
                yield [chunk[j] for j in ok], pixels, errors

    def embed_image_batch_safe(self, sources, batch_size: int | None = None,
                               on_decoded: OnDecoded | None = None) -> SafeBatch:
        """Encode what can be encoded; bad items are reported by index instead of failing the batch.

        `on_decoded(index, picture)`, when given, is called in a decoding thread with each decoded
        picture (upright RGB, at the JPEG draft scale, before the resize and crop); what it raises
        is logged, never an item's error."""
        sources = list(sources)
        parts, indices, errors = [], [], {}
        for idx, pixels, errs in self._batches(sources, batch_size, on_decoded):
            errors.update(errs)
            if idx:
                parts.append(self._run(lambda lm, pixels=pixels: lm.image_features(pixels)))
                indices += idx
        emb = np.concatenate(parts) if parts else np.empty((0, self.dim), np.float32)
        return SafeBatch(emb, indices, errors)

    def embed_images(self, sources, batch_size: int | None = None) -> np.ndarray:
        sources = list(sources)
        result = self.embed_image_batch_safe(sources, batch_size)
        if result.errors:
            i = min(result.errors)
            where = f"image item {i}" if len(sources) > 1 else "image"
            raise ValueError(f"{where}: {result.errors[i]}")
        return result.embeddings

    def get_model_info(self) -> dict:
        lm = self.load()
        cuda = lm.device == "cuda"
        return {
            "model_name": self.model_name,
            "model_path": lm.source,
            "is_demo": is_demo_model(self.model_name),
            "engine": lm.engine,
            "device": lm.device,
            "precision": lm.precision,
            "embedding_dim": lm.dim,
            "image_size": lm.image_size,
            "max_text_length": lm.max_text_len,
            "parameters": lm.parameters,
            "batch_size": self.batch_size,
            "max_workers": self.max_workers,
            "caching": self.enable_caching,
            "process_rss_mb": round(psutil.Process().memory_info().rss / 2**20, 1),
            "gpu_memory_allocated_mb": round(torch.cuda.memory_allocated() / 2**20, 1) if cuda else None,
            "gpu_memory_total_mb": round(torch.cuda.mem_get_info()[1] / 2**20, 1) if cuda else None,
            "cached_models": loading.cached_count(),
        }

    def cleanup(self) -> None:
        """Drop this service's model from the process cache and free its memory (reloads on next use)."""
        with self._lock:
            lm, self._loaded = self._loaded, None
        if lm is not None:
            loading.release(lm)
            cuda = lm.device == "cuda"
            del lm
            gc.collect()
            if cuda:
                torch.cuda.empty_cache()

    # -- seed-compatible async API -------------------------------------------------------------
    async def _in_thread(self, fn, *args):
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))

    async def encode_text(self, text: str) -> np.ndarray:
        return (await self._in_thread(self.embed_texts, [text]))[0]

    async def encode_image(self, image) -> np.ndarray:
        return (await self._in_thread(self.embed_images, [image]))[0]

    async def encode_batch_text(self, texts, batch_size: int | None = None) -> np.ndarray:
        return await self._in_thread(self.embed_texts, list(texts), batch_size)

    async def encode_batch_images(self, images, batch_size: int | None = None) -> np.ndarray:
        return await self._in_thread(self.embed_images, list(images), batch_size)

    async def compute_similarity(self, a, b) -> float:
        return cosine(a, b)


@functools.cache
def get_clip_service() -> CLIPService:
    """The process-wide default service, configured from the environment."""
    return CLIPService(**VALIDATED_CONFIG)
