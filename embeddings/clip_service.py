"""CLIP encoding service (spec section 3): sync methods for Django/RQ, async ones for the seed API.

One loaded model per (model, device, precision) per process, shared by every CLIPService.
Embeddings are float32, L2-normalised, whatever precision the model runs in.
"""
from __future__ import annotations

import asyncio
import functools
import gc
import logging
import os
import socket
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlparse

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import psutil  # noqa: E402
import torch  # noqa: E402

from .clip_config import VALIDATED_CONFIG, is_demo_model, resolve_model_name  # noqa: E402
from .preprocessing import Preprocessor, open_image  # noqa: E402

logger = logging.getLogger("embeddings.clip_service")

# int8 keeps fp32 activations; its Linear weights are quantised after loading (_quantise_int8).
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}
LOAD_COUNT = 0  # number of real model loads in this process (tests assert sharing with it)
_CACHE: dict[tuple[str, str, str], "LoadedModel"] = {}
_LOCK = threading.Lock()


class ModelLoadError(RuntimeError):
    """The model named by CLIP_MODEL_NAME could not be loaded."""


class SafeBatch(NamedTuple):
    embeddings: np.ndarray  # (len(indices), dim), rows in the order of `indices`
    indices: list[int]  # positions in the input that were encoded
    errors: dict[int, str]  # position -> why that item was skipped


@dataclass
class LoadedModel:
    model: torch.nn.Module
    tokenizer: object
    preprocessor: Preprocessor
    source: str
    device: str
    precision: str
    dim: int
    image_size: int
    max_text_len: int
    parameters: int = 0  # counted before any int8 quantisation (packed weights are not parameters)
    # Fast tokenizers mutate their padding/truncation state per call: concurrent calls can fail
    # with "Already borrowed", so web threads take turns (tokenising is microseconds).
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose_device(device: str, threshold_gb: float, fallback_to_cpu: bool = True) -> str:
    if device == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        if device == "cuda" and not fallback_to_cpu:
            raise ModelLoadError("CLIP_DEVICE=cuda but no CUDA device is available (CLIP_FALLBACK_TO_CPU=false)")
        if device == "cuda":
            logger.warning("CLIP_DEVICE=cuda but CUDA is unavailable; using the CPU")
        return "cpu"
    if device == "cuda":
        return "cuda"
    free, _total = torch.cuda.mem_get_info()
    if free / 2**30 >= threshold_gb:
        return "cuda"
    logger.info("CUDA has %.1f GB free (< CLIP_GPU_MEMORY_THRESHOLD=%s); using the CPU", free / 2**30, threshold_gb)
    return "cpu"


def choose_precision(precision: str, device: str) -> str:
    if precision == "auto":
        if device == "cuda":
            return "fp16"
        return "bf16" if cpu_has_native_bf16() else "fp32"
    if precision == "int8" and device == "cuda":
        logger.warning("CLIP_PRECISION=int8 is a CPU mode; using fp16 on CUDA")
        return "fp16"
    if precision == "fp16" and device == "cpu":
        # CPU fp16 kernels are slow and some ops are missing; fp32 is the safe exact choice.
        logger.warning("CLIP_PRECISION=fp16 is not supported on the CPU; using fp32")
        return "fp32"
    return precision


def _quantise_int8(model: torch.nn.Module) -> None:
    """Dynamic int8 quantisation, in place, of the image tower's Linear layers (weights per channel).

    For CPUs without native bf16, where ingest is bound by the fp32 image tower. Measured mean
    cosine to the fp32 image embedding: 0.9998 on ViT-B/32 and on the demo model (tests check
    >= 0.999). The text tower stays fp32: quantised, ViT-B/32 text measured 0.99896 (per-tensor)
    and 0.99910 with a minimum of 0.99888 (per-channel), too close to the bar. The patch embedding
    (a convolution), layer norms and attention products stay fp32.
    """
    import warnings

    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch marks the quantised-tensor API as deprecated
        warnings.simplefilter("ignore", UserWarning)
        quantize_dynamic(model.vision_model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                         inplace=True)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """Cheap connect test, so a machine without network fails in seconds instead of ~25 s of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def _load(name: str, device: str, precision: str) -> LoadedModel:
    global LOAD_COUNT
    from transformers import AutoTokenizer, CLIPImageProcessorPil, CLIPModel

    source = resolve_model_name(name)
    is_dir = Path(source).is_dir()

    def load(local_only: bool):
        kw = {"local_files_only": local_only}
        model = CLIPModel.from_pretrained(source, dtype=DTYPES[precision], **kw)
        return model, AutoTokenizer.from_pretrained(source, **kw), CLIPImageProcessorPil.from_pretrained(source, **kw)

    try:
        try:  # a local directory or the hub cache first: never touches the network
            model, tokenizer, image_processor = load(True)
        except OSError:
            if is_dir or not _hub_reachable():
                raise
            model, tokenizer, image_processor = load(False)
    except Exception as e:
        hint = ("Use a local model directory, or 'demo' for the bundled model, when no model hub is reachable."
                if not is_dir else "The directory must hold a Hugging Face CLIP model (config, weights, "
                "tokenizer and preprocessor files).")
        raise ModelLoadError(f"Cannot load CLIP model CLIP_MODEL_NAME={name!r} ({source}): "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. {hint}") from e
    model.to(device).eval()
    parameters = sum(p.numel() for p in model.parameters())
    if precision == "int8":
        _quantise_int8(model)
    cfg = model.config
    LOAD_COUNT += 1
    logger.info("Loaded CLIP model %s on %s (%s)", source, device, precision)
    return LoadedModel(model, tokenizer, Preprocessor(image_processor), source, device, precision,
                       cfg.projection_dim, cfg.vision_config.image_size, cfg.text_config.max_position_embeddings,
                       parameters=parameters)


class CLIPService:
    def __init__(self, model_name=None, batch_size=32, max_workers=4, gpu_memory_threshold=2.0,
                 enable_caching=True, fallback_to_cpu=True, log_level="INFO", device="auto", precision="auto",
                 draft=True):
        self.model_name = model_name or VALIDATED_CONFIG["model_name"]
        self.batch_size, self.max_workers = int(batch_size), int(max_workers)
        self.gpu_memory_threshold, self.enable_caching = float(gpu_memory_threshold), enable_caching
        self.fallback_to_cpu, self.requested_device, self.requested_precision = fallback_to_cpu, device, precision
        self.draft = draft  # JPEG draft decoding on the ingest path; False gives exact processor parity
        logger.setLevel(str(log_level).upper())
        self._loaded: LoadedModel | None = None
        self._lock = threading.Lock()

    # -- loading -------------------------------------------------------------------------------
    def _acquire(self, device: str) -> LoadedModel:
        precision = choose_precision(self.requested_precision, device)
        key = (resolve_model_name(self.model_name), device, precision)
        if not self.enable_caching:
            return _load(self.model_name, device, precision)
        with _LOCK:  # one load per key even when many threads ask at once
            if key not in _CACHE:
                _CACHE[key] = _load(self.model_name, device, precision)
            return _CACHE[key]

    def load(self) -> LoadedModel:
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
        self._run(lambda m: self._image_forward(m, torch.zeros(1, 3, *m.preprocessor.crop)))

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

    # -- forward passes ------------------------------------------------------------------------
    @staticmethod
    def _normalise(features: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    def _image_forward(self, lm: LoadedModel, pixels: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            out = lm.model.get_image_features(pixel_values=pixels.to(lm.device, DTYPES[lm.precision]))
        return self._normalise(out.pooler_output)

    def _text_forward(self, lm: LoadedModel, texts: list[str]) -> np.ndarray:
        # Pad to the longest text of the batch, not to 77: a short query costs a fraction of the work.
        with lm.tokenizer_lock:
            tokens = lm.tokenizer(texts, padding="longest", truncation=True, max_length=lm.max_text_len,
                                  return_tensors="pt")
        with torch.inference_mode():
            out = lm.model.get_text_features(input_ids=tokens["input_ids"].to(lm.device),
                                             attention_mask=tokens["attention_mask"].to(lm.device))
        return self._normalise(out.pooler_output)

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
            out[idx] = self._run(lambda lm: self._text_forward(lm, [texts[i] for i in idx]))
        return out

    def _prepare(self, lm: LoadedModel, source, out: np.ndarray) -> None:
        pre = lm.preprocessor
        image = open_image(source, draft=self.draft, target=pre.target)
        pre.to_array(pre.resize_crop(image), out)

    def _batches(self, sources: list, batch_size: int | None):
        """Yield (indices, pixel tensor, errors) per batch; batch k+1 decodes while k is encoded."""
        lm, bs = self.load(), batch_size or self.batch_size
        chunks = [list(range(s, min(s + bs, len(sources)))) for s in range(0, len(sources), bs)]
        shape = (3, *lm.preprocessor.crop)

        def submit(pool, chunk):
            buf = np.empty((len(chunk), *shape), np.float32)
            return buf, [pool.submit(self._prepare, lm, sources[i], buf[j]) for j, i in enumerate(chunk)]

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
                pixels = torch.from_numpy(buf if len(ok) == len(chunk) else buf[ok])
                yield [chunk[j] for j in ok], pixels, errors

    def embed_image_batch_safe(self, sources, batch_size: int | None = None) -> SafeBatch:
        """Encode what can be encoded; bad items are reported by index instead of failing the batch."""
        sources = list(sources)
        parts, indices, errors = [], [], {}
        for idx, pixels, errs in self._batches(sources, batch_size):
            errors.update(errs)
            if idx:
                parts.append(self._run(lambda lm: self._image_forward(lm, pixels)))
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
            "cached_models": len(_CACHE),
        }

    def cleanup(self) -> None:
        """Drop this service's model from the process cache and free its memory (reloads on next use)."""
        with self._lock:
            lm, self._loaded = self._loaded, None
        if lm is not None:
            with _LOCK:
                for key in [k for k, v in _CACHE.items() if v is lm]:
                    del _CACHE[key]
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


def cosine(a, b) -> float:
    """Cosine similarity of two embeddings (0.0 when either is all zeros)."""
    a, b = np.asarray(a, np.float32).ravel(), np.asarray(b, np.float32).ravel()
    if a.shape != b.shape:
        raise ValueError(f"embeddings have different sizes: {a.size} and {b.size}")
    denom = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b) / denom if denom else 0.0


@functools.lru_cache(maxsize=None)
def get_clip_service() -> CLIPService:
    """The process-wide default service, configured from the environment."""
    return CLIPService(**VALIDATED_CONFIG)
