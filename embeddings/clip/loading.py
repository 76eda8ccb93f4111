"""Loading a model once per process: local files first, the hub only when reachable; int8
quantisation; the cache shared by every CLIPService.

The engine seam: a loaded model is an object with `image_features(pixels)` and
`text_features(texts)` returning L2-normalised float32 rows, plus the facts below (`dim`,
`preprocessor`, ...). `TorchModel` runs the towers in PyTorch; another engine (ONNX Runtime, a
different model family) is another such class returned by `load_model`.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from .config import resolve_model_name  # noqa: E402
from .device import ModelLoadError  # noqa: E402
from .preprocessing import Preprocessor  # noqa: E402

logger = logging.getLogger("embeddings.clip")

# int8 keeps fp32 activations; its Linear weights are quantised after loading (quantise_int8).
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}
LOAD_COUNT = 0  # number of real model loads in this process (tests assert sharing with it)
_CACHE: dict[tuple[str, str, str], TorchModel] = {}
_LOCK = threading.Lock()


@dataclass
class TorchModel:
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
    engine: str = "torch"
    # Fast tokenizers mutate their padding/truncation state per call: concurrent calls can fail
    # with "Already borrowed", so web threads take turns (tokenising is microseconds).
    tokenizer_lock: threading.Lock = field(default_factory=threading.Lock)

    @staticmethod
    def _normalise(features: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    def image_features(self, pixels) -> np.ndarray:
        pixels = torch.as_tensor(pixels)
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels.to(self.device, DTYPES[self.precision]))
        return self._normalise(out.pooler_output)

    def text_features(self, texts: list[str]) -> np.ndarray:
        # Pad to the longest text of the batch, not to 77: a short query costs a fraction of the work.
        with self.tokenizer_lock:
            tokens = self.tokenizer(texts, padding="longest", truncation=True, max_length=self.max_text_len,
                                    return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_text_features(input_ids=tokens["input_ids"].to(self.device),
                                               attention_mask=tokens["attention_mask"].to(self.device))
        return self._normalise(out.pooler_output)


def quantise_int8(model: torch.nn.Module) -> None:
    """Dynamic int8 quantisation, in place, of the image tower's Linear layers (weights per channel).

    For CPUs without native bf16, where ingest is bound by the fp32 image tower. Measured mean
    cosine to the fp32 image embedding: 0.9998 on ViT-B/32 and on the demo model (tests check
    >= 0.999). The text tower stays fp32: quantised, ViT-B/32 text measured 0.99896 (per-tensor)
    and 0.99910 with a minimum of 0.99888 (per-channel), too close to the bar. The patch embedding
    (a convolution), layer norms and attention products stay fp32.
    """
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():  # torch marks the quantised-tensor API as deprecated
        warnings.simplefilter("ignore", UserWarning)
        quantize_dynamic(model.vision_model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8,
                         inplace=True)


def hub_reachable(timeout: float = 3.0) -> bool:
    """Cheap connect test, so a machine without network fails in seconds instead of ~25 s of retries."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((url.hostname, url.port or 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def load_model(name: str, device: str, precision: str) -> TorchModel:
    """Load `name` (hub id, directory or "demo") onto `device` in `precision`; ModelLoadError says why not."""
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
            if is_dir or not hub_reachable():
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
        quantise_int8(model)
    cfg = model.config
    LOAD_COUNT += 1
    logger.info("Loaded CLIP model %s on %s (%s)", source, device, precision)
    return TorchModel(model, tokenizer, Preprocessor(image_processor), source, device, precision,
                      cfg.projection_dim, cfg.vision_config.image_size, cfg.text_config.max_position_embeddings,
                      parameters=parameters)


def acquire(name: str, device: str, precision: str, cached: bool = True) -> TorchModel:
    """The process's one loaded model for (model, device, precision), loading it on first use."""
    if not cached:
        return load_model(name, device, precision)
    key = (resolve_model_name(name), device, precision)
    with _LOCK:  # one load per key even when many threads ask at once
        if key not in _CACHE:
            _CACHE[key] = load_model(name, device, precision)
        return _CACHE[key]


def release(loaded) -> None:
    """Forget a loaded model in the cache (the caller drops its own reference)."""
    with _LOCK:
        for key in [k for k, v in _CACHE.items() if v is loaded]:
            del _CACHE[key]


def cached_count() -> int:
    return len(_CACHE)
