"""Models in Immich's ONNX layout (any model of Immich's zoo), run as Immich runs them.

A directory (or hub repository `immich-app/<name>`) holding:
  config.json                  open_clip config: embed_dim, vision_cfg, text_cfg (context_length,
                               tokenizer_kwargs.clean)
  visual/model.onnx            input "image" float32 (1, 3, size, size) -> normalised embedding
  visual/preprocess_cfg.json   size, mean, std, interpolation, resize_mode (shortest | squash)
  textual/model.onnx           input "text" int32 (1, context_length) (M-CLIP and LABSE models:
                               input_ids + attention_mask) -> normalised embedding
  textual/tokenizer.json, textual/tokenizer_config.json (pad_token)
ONNX weights may sit in external-data files beside a model.onnx; ONNX Runtime reads them there.
Current exports have a static batch of 1: those graphs are run once per item.
The same input gives Immich's embedding (same resize, crop, arithmetic and tokens). Immich encodes
its 1440 px preview JPEG, not the original, so its stored vectors differ slightly from ours for
the same photo: search across both works, but exact duplicates are not exactly equal.
"""
from __future__ import annotations

import json
import string
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from embeddings.clip.config import resolve_model_name
from embeddings.clip.device import ModelLoadError
from embeddings.clip.engine import LoadedModel
from embeddings.clip.preprocessing import MAX_ASPECT, Preprocessor, to_rgb

HUB_PREFIX = "immich-app/"
RESIZE_MODES = ("shortest", "squash")
_PUNCTUATION = str.maketrans("", "", string.punctuation)
# Only what CPU inference needs: the repositories also hold ARM-NN, RKNN and fp16 variants.
HUB_FILES = ["config.json", "visual/model.onnx*", "visual/preprocess_cfg.json", "visual/*.onnx_data",
             "textual/model.onnx*", "textual/tokenizer.json", "textual/tokenizer_config.json", "textual/*.onnx_data"]


def is_layout(path) -> bool:
    p = Path(path)
    return all((p / f).is_file() for f in ("config.json", "visual/model.onnx", "textual/model.onnx"))


def is_immich_name(source: str) -> bool:
    return source.startswith(HUB_PREFIX) or is_layout(source)


def resolve(name: str, hub_reachable) -> Path:
    """The local directory of `name`: itself, or the hub repository's snapshot (cache first)."""
    source = resolve_model_name(name)
    if is_layout(source):
        return Path(source)
    if not source.startswith(HUB_PREFIX):
        raise ModelLoadError(f"CLIP_MODEL_NAME={name!r} is not in Immich's layout (config.json, visual/model.onnx, "
                             "textual/model.onnx)")
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(source, allow_patterns=HUB_FILES, local_files_only=True))
    except Exception:  # noqa: BLE001 - not in the local hub cache: fetch it below
        pass
    if not hub_reachable():
        raise ModelLoadError(f"Cannot load CLIP_MODEL_NAME={name!r}: Immich models come from the Hugging Face hub, "
                             "which is not reachable from this machine. Download the repository elsewhere (config.json, "
                             "visual/, textual/) and set CLIP_MODEL_NAME to its directory.")
    try:
        path = Path(snapshot_download(source, allow_patterns=HUB_FILES))
    except Exception as e:
        raise ModelLoadError(f"Cannot fetch CLIP_MODEL_NAME={name!r} from the hub: {type(e).__name__}: {e}") from e
    if not is_layout(path):
        raise ModelLoadError(f"CLIP_MODEL_NAME={name!r}: the repository has no config.json, visual/model.onnx and "
                             "textual/model.onnx")
    return path


def clean_text(text: str, canonicalize: bool = False) -> str:
    """Immich's cleaning: collapse whitespace; `canonicalize` (SigLIP family) also drops ASCII
    punctuation and lowercases."""
    text = " ".join(text.split())
    return text.translate(_PUNCTUATION).lower() if canonicalize else text


class ImmichPreprocessor:
    """Immich's image transform with the methods clip.preprocessing.Preprocessor offers the service.

    `shortest`: resize the shortest side to `size` (the other side int(ratio * size)), then centre
    crop size x size at int(w/2 - size/2); `squash`: resize to size x size. Then x/255, *1/std,
    -mean/std in float32 (looked up per byte value: the same float32 results, computed once).
    """

    def __init__(self, cfg: dict):
        size = cfg["size"]
        self.size = int(size[0] if isinstance(size, (list, tuple)) else size)
        self.mode = cfg.get("resize_mode", "shortest")  # open_clip's default for older configs
        if self.mode not in RESIZE_MODES:
            raise ValueError(f"unsupported resize_mode {self.mode!r} (expected one of {', '.join(RESIZE_MODES)})")
        self.resample = Image.Resampling[str(cfg.get("interpolation", "bicubic")).upper()]
        mean, std = np.asarray(cfg["mean"], np.float32), np.asarray(cfg["std"], np.float32)
        levels = np.arange(256, dtype=np.float32) / 255.0
        self.lut = np.ascontiguousarray(levels[None, :] * (1.0 / std)[:, None] - (mean / std)[:, None], np.float32)
        self.crop = (self.size, self.size)

    @property
    def target(self) -> int:
        return self.size

    def resize_crop(self, im: Image.Image) -> Image.Image:
        im, size = to_rgb(im), self.size
        if self.mode == "squash":
            return im.resize((size, size), resample=self.resample)
        w, h = im.size
        if max(w, h) > MAX_ASPECT * min(w, h):  # a 1 x 100,000 strip: keep the centre, not a huge resize
            keep = MAX_ASPECT * min(w, h)
            left, top = ((w - keep) // 2, 0) if w > h else (0, (h - keep) // 2)
            im = im.crop((left, top, left + (keep if w > h else w), top + (h if w > h else keep)))
            w, h = im.size
        if w < h:
            im = im.resize((size, int((h / w) * size)), resample=self.resample)
        else:
            im = im.resize((int((w / h) * size), size), resample=self.resample)
        left, upper = int(im.width / 2 - size / 2), int(im.height / 2 - size / 2)
        return im.crop((left, upper, left + size, upper + size))

    to_array = Preprocessor.to_array  # the same lookup-table normalisation, over this model's lut


def _static_batch(sess) -> bool:
    return sess.get_inputs()[0].shape[0] == 1


def _normalise(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


@dataclass(kw_only=True)
class ImmichModel(LoadedModel):
    visual: object
    textual: object
    canonicalize: bool = False
    engine: str = "onnx"
    family: str = "immich"

    def _run(self, sess, feeds: dict) -> np.ndarray:
        if not _static_batch(sess):
            return sess.run(None, feeds)[0]
        n = len(next(iter(feeds.values())))
        return np.concatenate([sess.run(None, {k: v[i:i + 1] for k, v in feeds.items()})[0] for i in range(n)])

    def image_features(self, pixels) -> np.ndarray:
        pixels = np.ascontiguousarray(np.asarray(pixels, dtype=np.float32))
        return _normalise(self._run(self.visual, {self.visual.get_inputs()[0].name: pixels}))

    def tokenize(self, texts: list[str], tensors: str = "np") -> dict:
        texts = [clean_text(t, self.canonicalize) for t in texts]
        with self.tokenizer_lock:
            encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], np.int32)
        if "text" in self.text_inputs:
            return {"text": ids}
        return {"input_ids": ids, "attention_mask": np.array([e.attention_mask for e in encodings], np.int32)}

    def text_features(self, texts: list[str]) -> np.ndarray:
        return _normalise(self._run(self.textual, self.tokenize(texts)))


def load(name: str, path: Path) -> ImmichModel:
    """Open an Immich-layout directory with ONNX Runtime; ModelLoadError says what is wrong."""
    from tokenizers import Tokenizer

    from embeddings.clip.onnx_engine import session

    try:
        config = json.loads((path / "config.json").read_text())
        text_cfg = config.get("text_cfg", {})
        preprocessor = ImmichPreprocessor(json.loads((path / "visual" / "preprocess_cfg.json").read_text()))
        pad_token = json.loads((path / "textual" / "tokenizer_config.json").read_text())["pad_token"]
        context = int(text_cfg.get("context_length", 77))
        tokenizer = Tokenizer.from_file(str(path / "textual" / "tokenizer.json"))
        pad_id = tokenizer.token_to_id(pad_token)
        if pad_id is None:
            raise ValueError(f"pad token {pad_token!r} is not in textual/tokenizer.json")
        tokenizer.enable_padding(length=context, pad_token=pad_token, pad_id=pad_id)
        tokenizer.enable_truncation(max_length=context)
        visual, textual = session(path / "visual" / "model.onnx"), session(path / "textual" / "model.onnx")
    except Exception as e:  # noqa: BLE001 - ONNX Runtime's load errors have no common base but Exception
        raise ModelLoadError(f"Cannot load CLIP_MODEL_NAME={name!r} ({path}) as an Immich model: "
                             f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    inputs = tuple(i.name for i in textual.get_inputs())
    clean = (text_cfg.get("tokenizer_kwargs") or {}).get("clean")
    return ImmichModel(visual=visual, textual=textual, canonicalize=clean == "canonicalize", tokenizer=tokenizer,
                       preprocessor=preprocessor, source=str(path), device="cpu", precision="fp32",
                       dim=int(config["embed_dim"]), image_size=preprocessor.size, max_text_len=context,
                       text_inputs=inputs, tokenizer_lock=threading.Lock())
