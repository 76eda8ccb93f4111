"""Loading a model once per process: local files first, the hub only when reachable; int8
quantisation; the cache shared by every CLIPService.

The engine seam is clip.engine.LoadedModel: `TorchModel` here runs the towers in PyTorch;
`load_model` returns it, an `OnnxModel` exported from it (CLIP_ENGINE=onnx), or an `ImmichModel`
for a model in Immich's ONNX layout.
"""
from __future__ import annotations

import logging
import os
import socket
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from embeddings.clip import immich, onnx_engine  # noqa: E402
from embeddings.clip.config import resolve_model_name  # noqa: E402
from embeddings.clip.device import ModelLoadError  # noqa: E402
from embeddings.clip.engine import LoadedModel  # noqa: E402
from embeddings.clip.preprocessing import Preprocessor  # noqa: E402

logger = logging.getLogger("embeddings.clip")

# int8 keeps fp32 activations; its Linear weights are quantised after loading (quantise_int8).
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}
LOAD_COUNT = 0  # number of real model loads in this process (tests assert sharing with it)
_CACHE: dict[tuple[str, str, str, str], LoadedModel] = {}
_LOCK = threading.Lock()


@dataclass(kw_only=True)
class TorchModel(LoadedModel):
    model: torch.nn.Module
    engine: str = "torch"

    @staticmethod
    def _normalise(features: torch.Tensor) -> np.ndarray:
        return torch.nn.functional.normalize(features.float(), dim=-1).cpu().numpy()

    def image_features(self, pixels) -> np.ndarray:
        pixels = torch.as_tensor(pixels)
        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=pixels.to(self.device, DTYPES[self.precision]))
        return self._normalise(out.pooler_output)

    def text_features(self, texts: list[str]) -> np.ndarray:
        tokens = self.tokenize(texts, "pt")
        with torch.inference_mode():
            out = self.model.get_text_features(**{k: v.to(self.device) for k, v in tokens.items()})
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


def _load_transformers(name: str, source: str, precision: str):
    """(model, tokenizer, image processor) of a transformers CLIP or SigLIP model; ModelLoadError says why not."""
    from transformers import AutoConfig, AutoTokenizer, CLIPImageProcessorPil, CLIPModel, SiglipImageProcessorPil, SiglipModel

    is_dir = Path(source).is_dir()
    classes = {"clip": (CLIPModel, CLIPImageProcessorPil), "siglip": (SiglipModel, SiglipImageProcessorPil)}

    def load(local_only: bool):
        kw = {"local_files_only": local_only}
        model_type = AutoConfig.from_pretrained(source, **kw).model_type
        if model_type not in classes:
            raise ValueError(f"model type {model_type!r} is not supported (CLIP, and SigLIP/SigLIP2 at a fixed "
                             "resolution: NaFlex SigLIP2 checkpoints are not)")
        model_cls, processor_cls = classes[model_type]
        model = model_cls.from_pretrained(source, dtype=DTYPES[precision], **kw)
        return model, AutoTokenizer.from_pretrained(source, **kw), processor_cls.from_pretrained(source, **kw)

    try:
        try:  # a local directory or the hub cache first: never touches the network
            return load(True)
        except OSError:
            if is_dir or not hub_reachable():
                raise
            return load(False)
    except Exception as e:
        hint = ("Use a local model directory, or 'demo' for the bundled model, when no model hub is reachable."
                if not is_dir else "The directory must hold a Hugging Face CLIP or SigLIP model (config, weights, "
                "tokenizer and preprocessor files), or an Immich model (config.json, visual/, textual/).")
        raise ModelLoadError(f"Cannot load CLIP model CLIP_MODEL_NAME={name!r} ({source}): "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}. {hint}") from e


def load_torch(name: str, device: str, precision: str) -> TorchModel:
    """Load `name` (hub id, directory or "demo") into PyTorch on `device` in `precision`."""
    source = resolve_model_name(name)
    model, tokenizer, image_processor = _load_transformers(name, source, precision)
    model.to(device).eval()
    parameters = sum(p.numel() for p in model.parameters())
    if precision == "int8":
        quantise_int8(model)
    cfg = model.config
    siglip = cfg.model_type == "siglip"
    # SigLIP's text head maps to the vision width (both towers end in the same space); CLIP projects.
    dim = cfg.vision_config.hidden_size if siglip else cfg.projection_dim
    lower = bool(getattr(tokenizer, "do_lower_case", False) or tokenizer.init_kwargs.get("do_lower_case", False))
    return TorchModel(model=model, tokenizer=tokenizer, preprocessor=Preprocessor(image_processor), source=source,
                      device=device, precision=precision, dim=dim, image_size=cfg.vision_config.image_size,
                      max_text_len=cfg.text_config.max_position_embeddings, parameters=parameters,
                      family=cfg.model_type, pad_to_max=siglip, lower_case=lower,
                      text_inputs=("input_ids",) if siglip else ("input_ids", "attention_mask"))


def load_model(name: str, device: str, precision: str, engine: str = "torch") -> LoadedModel:
    """Load `name` (hub id, directory, Immich layout or "demo") for `engine`; ModelLoadError says why not."""
    global LOAD_COUNT
    source = resolve_model_name(name)
    if immich.is_immich_name(source):
        if engine == "torch":
            logger.warning("%s is an ONNX model in Immich's layout; it runs on ONNX Runtime whatever CLIP_ENGINE says",
                           name)
        loaded = immich.load(name, immich.resolve(name, hub_reachable))
    elif engine == "onnx":
        # The export runs the fp32 towers (int8 is quantised from the export), on the CPU.
        torch_model = load_torch(name, "cpu", "fp32")
        loaded = onnx_engine.from_torch(torch_model, precision)
        del torch_model
    else:
        loaded = load_torch(name, device, precision)
    LOAD_COUNT += 1
    logger.info("Loaded model %s with %s on %s (%s)", loaded.source, loaded.engine, loaded.device, loaded.precision)
    return loaded


def acquire(name: str, device: str, precision: str, cached: bool = True, engine: str = "torch") -> LoadedModel:
    """The process's one loaded model for (model, device, precision, engine), loading it on first use."""
    if not cached:
        return load_model(name, device, precision, engine)
    key = (resolve_model_name(name), device, precision, engine)
    with _LOCK:  # one load per key even when many threads ask at once
        if key not in _CACHE:
            _CACHE[key] = load_model(name, device, precision, engine)
        return _CACHE[key]


def release(loaded) -> None:
    """Forget a loaded model in the cache (the caller drops its own reference)."""
    with _LOCK:
        for key in [k for k, v in _CACHE.items() if v is loaded]:
            del _CACHE[key]


def cached_count() -> int:
    return len(_CACHE)
