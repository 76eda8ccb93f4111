"""Choosing where and in which precision a model runs."""
from __future__ import annotations

import logging
from pathlib import Path

import torch

logger = logging.getLogger("embeddings.clip")


class ModelLoadError(RuntimeError):
    """The model named by CLIP_MODEL_NAME could not be loaded (or not where it was asked to be)."""


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
