"""CLIP_ENGINE=onnx: the loaded model's towers exported once to ONNX and run with ONNX Runtime.

Each tower is exported with its projection and L2 normalisation inside the graph, a dynamic batch
(and text length) axis, into <data dir>/onnx/<key>/, where the key hashes the model (its source,
config and weight files' sizes and mtimes), the export settings, the precision and the versions of
torch, transformers, onnx and onnxruntime. A build writes temporary names, renames them into place
and writes manifest.json (sha256 of each file) last; a folder whose files do not match its manifest
is rebuilt, never used. A file lock keeps two processes from building the same folder at once.

int8 (CLIP_PRECISION=int8, and what `auto` picks on the CPU), each tower the way that suits it:
- image tower (compute-bound: a batch of 32 x 50 tokens): onnxruntime's dynamic quantisation of the
  matrix multiplies, weights per channel (weight_type says which weights); the rest stays fp32.
  ViT-B/32 on the AVX-512 + VNNI kind: 63.6 img/s vs 21.4 fp32, mean cosine to fp32 0.99988. (On
  the AVX2 kind, measured with the patch convolution quantised too: 20.8 img/s vs 13.6 fp32.)
- text tower (a query is a few tokens: bound by reading the weights): on CPUs with VNNI/AMX the same
  dynamic int8 as the image tower (ViT-B/32 on the AVX-512 kind: 3.43-3.50 ms p50 against
  4.22-4.37 for the 8-bit blocks below, cosine 0.99959); elsewhere 8-bit weights in blocks of 128 (MatMulNBits, int8 compute):
  ViT-B/32 on the AVX2 kind 10.8 ms vs 17.4 fp32, cosine 0.99973, where per-channel dynamic int8
  gave 0.9986-0.9991 (under the 0.999 bar) and 4-bit blocks 0.968.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from clipsearch.config import CONFIG
from embeddings.clip import device
from embeddings.clip.engine import LoadedModel

logger = logging.getLogger("embeddings.clip")

FORMAT = 4  # bump when what is exported changes
OPSET = 17
ROOT = Path(__file__).resolve().parents[2]
EXPORT_COUNT = 0  # number of exports built in this process (tests check a restart reuses the cache)
FILES = ("image.onnx", "text.onnx")
CACHE_DIR: Path | None = None  # where exports go when set (tests); else <data dir>/onnx


def cache_root() -> Path:
    return CACHE_DIR or Path(CONFIG["CLIPSEARCH_DATA_DIR"] or ROOT / "var").resolve() / "onnx"


def _versions() -> dict:
    import onnx
    import onnxruntime
    import transformers

    return {"torch": torch.__version__, "transformers": transformers.__version__, "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__}


def cache_key(tm, precision: str) -> str:
    """Hash of what the exported files depend on (tm: the fp32 TorchModel they are exported from)."""
    src, files = Path(tm.source), {}
    if src.is_dir():
        for f in sorted(src.iterdir()):
            if f.is_file():
                st = f.stat()
                files[f.name] = [st.st_size, st.st_mtime_ns]
    facts = {"format": FORMAT, "opset": OPSET, "source": str(tm.source), "files": files, "precision": precision,
             "config": tm.model.config.to_json_string(use_diff=False),
             "commit": getattr(tm.model.config, "_commit_hash", None), "text_inputs": list(tm.text_inputs),
             "weights": weight_type() if precision == "int8" else None,
             "versions": _versions()}
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:24]


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 22):
            h.update(chunk)
    return h.hexdigest()


def is_valid(folder: Path) -> bool:
    """True when manifest.json exists and every file it names has its recorded sha256."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        ok = all(_sha256(folder / name) == digest for name, digest in manifest["files"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    if not ok:
        logger.warning("ONNX export in %s does not match its manifest (damaged); rebuilding it", folder)
    return ok


class _ImageTower(torch.nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        features = self.model.get_image_features(pixel_values=pixel_values).pooler_output
        return torch.nn.functional.normalize(features, dim=-1)


class _TextTower(torch.nn.Module):
    def __init__(self, model, names):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs):
        features = self.model.get_text_features(**dict(zip(self.names, inputs))).pooler_output
        return torch.nn.functional.normalize(features, dim=-1)


def export(module, args: tuple, path: Path, names: list[str], dynamic: dict) -> None:
    """torch.onnx.export with the TorchScript exporter (fast, handles these towers), else the dynamo one."""
    axes = {**dynamic, "embedding": {0: "batch"}}
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer warnings about Python branches on shapes
        try:
            torch.onnx.export(module, args, str(path), input_names=names, output_names=["embedding"],
                              dynamic_axes=axes, opset_version=OPSET, dynamo=False)
        except Exception as e:  # noqa: BLE001 - any exporter failure: try the other exporter
            logger.warning("TorchScript ONNX export failed (%s); trying the dynamo exporter", e)
            torch.onnx.export(module, args, str(path), input_names=names, output_names=["embedding"],
                              dynamic_axes=axes, opset_version=max(OPSET, 18), dynamo=True, external_data=False)


def weight_type() -> str:
    """int8 weights where the CPU has int8 dot products (VNNI/AMX: the u8 x s8 kernels), else uint8:
    AVX2's u8 x s8 multiply-add saturates at 16 bits. Measured on the AVX2 kind (ViT-B/32 image
    tower, per-channel): uint8 weights cosine 0.99988 at 4.2 img/s per thread, int8 0.99967 at 4.5,
    int8 with 7-bit weights 0.99973 at 4.0; fp32 2.2."""
    return "QInt8" if device.cpu_has_int8_dot() else "QUInt8"


def quantise(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # it advises a pre-processing pass on the root logger; not needed here
    try:
        # MatMul only: the patch embedding's ConvInteger took 21% of the int8 tower's time for 3% of
        # its work; left in fp32 (with the position embeddings' Gather) the tower ran 70 img/s
        # instead of 60 (ViT-B/32, batch 32, AVX-512 + VNNI), cosine to fp32 0.99988 instead of
        # 0.99986. Not re-measured on the AVX2 kind.
        quantize_dynamic(str(src), str(dst), per_channel=True, weight_type=QuantType[weight_type()],
                         op_types_to_quantize=["MatMul"])
    finally:
        root.setLevel(level)


TEXT_BLOCK = 128  # weights per scale: 32 measured 0.99982 but 13.7 ms, 256 0.99968 at 9.7 ms


def quantise_text(src: Path, dst: Path) -> None:
    if device.cpu_has_int8_dot():
        # With VNNI the image tower's dynamic int8 is the faster one here too: 3.43-3.50 vs 4.22-4.37
        # ms p50 over 300 distinct ViT-B/32 queries, cosine to fp32 0.99959 (demo model 0.99998).
        # Without it (u8 weights) the same scheme measured 0.9986-0.9991, under the bar.
        quantise(src, dst)
        return
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import DefaultWeightOnlyQuantConfig, MatMulNBitsQuantizer

    # accuracy_level 4: activations in int8 for the multiply (level 0 runs 10x slower on the CPU)
    config = DefaultWeightOnlyQuantConfig(block_size=TEXT_BLOCK, is_symmetric=True, accuracy_level=4, bits=8)
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), algo_config=config)
    quantizer.process()
    quantizer.model.save_model_to_file(str(dst), use_external_data_format=False)


def build(tm, precision: str, folder: Path) -> None:
    """Export tm's towers into `folder` (temporary names, renamed into place, manifest last)."""
    global EXPORT_COUNT
    tmp = f".tmp-{os.getpid()}"
    (folder / "manifest.json").unlink(missing_ok=True)
    size = tm.preprocessor.crop
    pixels = torch.zeros(2, 3, *size)
    tokens = tm.tokenize(["a photo", "a small red circle on a white background"], "pt")
    names = list(tokens)
    export(_ImageTower(tm.model), (pixels,), folder / f"image.onnx{tmp}", ["pixel_values"],
           {"pixel_values": {0: "batch"}})
    export(_TextTower(tm.model, names), tuple(tokens.values()), folder / f"text.onnx{tmp}", names,
           {n: {0: "batch", 1: "tokens"} for n in names})
    if precision == "int8":
        quantise(folder / f"image.onnx{tmp}", folder / f"image.int8{tmp}")
        os.replace(folder / f"image.int8{tmp}", folder / f"image.onnx{tmp}")
        quantise_text(folder / f"text.onnx{tmp}", folder / f"text.int8{tmp}")
        os.replace(folder / f"text.int8{tmp}", folder / f"text.onnx{tmp}")
    digests = {}
    for name in FILES:
        digests[name] = _sha256(folder / f"{name}{tmp}")
        os.replace(folder / f"{name}{tmp}", folder / name)
    manifest = {"files": digests, "precision": precision, "source": str(tm.source), "versions": _versions()}
    (folder / f"manifest.json{tmp}").write_text(json.dumps(manifest, indent=1))
    os.replace(folder / f"manifest.json{tmp}", folder / "manifest.json")
    EXPORT_COUNT += 1
    logger.info("Exported %s to ONNX (%s) in %s", tm.source, precision, folder)


def ensure_export(tm, precision: str, root: Path | None = None) -> Path:
    """The folder holding a valid export of tm's towers in `precision`, building it when needed."""
    folder = (root or cache_root()) / cache_key(tm, precision)
    if is_valid(folder):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it right now: wait, then reuse
        if not is_valid(folder):
            build(tm, precision, folder)
    return folder


def session(path: Path, threads: int | None = None):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or device.cpu_threads()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(kw_only=True)
class OnnxModel(LoadedModel):
    image_session: object
    text_session: object
    folder: Path
    engine: str = "onnx"

    def image_features(self, pixels) -> np.ndarray:
        pixels = np.ascontiguousarray(np.asarray(pixels, dtype=np.float32))
        return self.image_session.run(None, {"pixel_values": pixels})[0].astype(np.float32, copy=False)

    def text_features(self, texts: list[str]) -> np.ndarray:
        feeds = {k: np.asarray(v, dtype=np.int64) for k, v in self.tokenize(texts, "np").items()}
        return self.text_session.run(None, feeds)[0].astype(np.float32, copy=False)


def from_torch(tm, precision: str, root: Path | None = None) -> OnnxModel:
    """An OnnxModel computing what the fp32 TorchModel `tm` computes (int8: its image tower quantised)."""
    folder = ensure_export(tm, precision, root)
    try:
        sessions = session(folder / "image.onnx"), session(folder / "text.onnx")
    except Exception as e:  # noqa: BLE001 - a file ONNX Runtime refuses is rebuilt once, not used
        logger.warning("ONNX Runtime cannot load the export in %s (%s); rebuilding it", folder, e)
        (folder / "manifest.json").unlink(missing_ok=True)
        folder = ensure_export(tm, precision, root)
        sessions = session(folder / "image.onnx"), session(folder / "text.onnx")
    return OnnxModel(image_session=sessions[0], text_session=sessions[1], folder=folder, tokenizer=tm.tokenizer,
                     preprocessor=tm.preprocessor, source=tm.source, device="cpu", precision=precision, dim=tm.dim,
                     image_size=tm.image_size, max_text_len=tm.max_text_len, parameters=tm.parameters,
                     family=tm.family, pad_to_max=tm.pad_to_max, lower_case=tm.lower_case, text_inputs=tm.text_inputs)
