"""Choosing where and in which precision a model runs."""
from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

logger = logging.getLogger("embeddings.clip")


class ModelLoadError(RuntimeError):
    """The model named by CLIP_MODEL_NAME could not be loaded (or not where it was asked to be)."""


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def _cpu_flags() -> set[str]:
    return {flag for line in _cpuinfo_lines() if line.startswith("flags") for flag in line.split(":", 1)[-1].split()}


def cpu_threads() -> int:
    """The threads a model's session may use: OMP_NUM_THREADS where set, else the CPUs this process
    may run on (what torch starts with). Read here, not from torch.get_num_threads(): a web process
    sets the OpenMP count it shares with torch to 1 for FAISS (clipsearch.wsgi) before the model
    loads, which gave its ONNX text tower one thread."""
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 natively (AVX512-BF16 or AMX); emulated bf16 is slower than fp32."""
    return bool(_cpu_flags() & {"avx512_bf16", "amx_bf16"})


def cpu_has_int8_dot() -> bool:
    """True when the CPU has an int8 dot-product instruction (VNNI or AMX): u8 x s8 products without
    the 16-bit saturation of AVX2's multiply-add."""
    return bool(_cpu_flags() & {"avx512_vnni", "avx_vnni", "amx_int8"})


def cpu_kind() -> str:
    """The CPU kind benchmarks and logs name: which of the vector extensions that matter here it has."""
    flags = _cpu_flags()
    model = next((line.split(":", 1)[1].strip() for line in _cpuinfo_lines() if line.startswith("model name")), "?")
    kind = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
    extras = [name for name, flag in (("bf16", "avx512_bf16"), ("VNNI", "avx512_vnni"), ("AMX", "amx_tile"))
              if flag in flags]
    return f"{kind}{' + ' + ', '.join(extras) if extras else ''} ({model}, {os.cpu_count()} CPUs)"


def choose_engine(engine: str, device: str, precision: str = "auto") -> str:
    """`auto`: ONNX Runtime on the CPU (its fp32 and int8 kernels beat torch eager there), torch on CUDA
    (the ONNX Runtime build here is CPU-only) and for bf16/fp16, which only the torch engine runs."""
    if engine == "auto":
        return "onnx" if device == "cpu" and precision not in ("bf16", "fp16") else "torch"
    return engine


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


def choose_precision(precision: str, device: str, engine: str = "torch") -> str:
    if engine == "onnx":
        # ONNX Runtime on the CPU: int8 (image tower) is the fastest setting that keeps the cosine bar
        # on both CPU kinds: AVX-512 + VNNI 51 img/s vs 22 fp32 (and 40 for torch bf16); AVX2 about
        # 1.9x fp32 (docs/PERFORMANCE.md, Engines). clip.onnx_engine picks the weight type per kind.
        if precision == "auto":
            return "int8"
        if precision in ("bf16", "fp16"):
            logger.warning("CLIP_PRECISION=%s is not an ONNX Runtime CPU mode; using fp32 (CLIP_ENGINE=torch runs it)",
                           precision)
            return "fp32"
        return precision
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
