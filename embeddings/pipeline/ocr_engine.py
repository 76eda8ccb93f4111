"""The OCR engine itself, free of Django: RapidOCR (PP-OCR models shipped in its wheel, run by ONNX
Runtime), loaded once in the one child process each worker keeps for reading text
(embeddings.pipeline.ocr). A child process, not a thread: the reader's Python parts would otherwise hold
the worker's GIL while the CLIP encoding waits for it, and an engine crash on a pathological
picture takes down only the child, which is started again.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

MIN_CONFIDENCE = 0.6  # RapidOCR's score per line; below it, shapes read as letters ("O")
_engine = None


def start(nice: int, threads: int) -> None:
    """The child's initialiser: lower its CPU priority (its threads inherit it), load the engine."""
    global _engine
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="ocr-parent-watch", daemon=True).start()
    try:
        os.nice(nice)
    except (AttributeError, OSError):
        pass
    _engine = _build(threads)


def _exit_with_parent(parent: int) -> None:
    # A worker killed outright (SIGKILL, the OOM killer) never shuts its pool down, and the reader
    # would outlive it with its ~200 MB (test runs left two such orphans each): leave with it.
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _build(threads: int):
    from rapidocr_onnxruntime import RapidOCR
    from rapidocr_onnxruntime.utils import infer_engine

    per_model = {f"{m}_{k}": v for m in ("det", "cls", "rec")
                 for k, v in (("intra_op_num_threads", threads), ("inter_op_num_threads", 1))}
    # ONNX Runtime's pool threads spin between runs by default, taking CPU from a CLIP batch being
    # encoded meanwhile; RapidOCR builds its sessions' options itself, so its builder is wrapped.
    original = infer_engine.OrtInferSession._init_sess_opts

    def quiet(config):
        options = original(config)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options

    infer_engine.OrtInferSession._init_sess_opts = staticmethod(quiet)
    try:
        # "max": scale only large pictures down for detection; the default ("min") blows small
        # ones up to 736 px, which costs a second per thumbnail-sized image.
        return RapidOCR(det_limit_side_len=960, det_limit_type="max", **per_model)
    finally:
        infer_engine.OrtInferSession._init_sess_opts = staticmethod(original)


def read_lines(pixels: np.ndarray) -> list[str]:
    """The text lines in an RGB array, top to bottom."""
    result, _ = _engine(pixels)
    lines = [str(text).strip() for _box, text, score in (result or []) if float(score) >= MIN_CONFIDENCE]
    return [line for line in lines if line]


def has_text(pixels: np.ndarray) -> bool:
    """Whether text detection alone (no recognition) finds any text box in an RGB array."""
    boxes, _ = _engine(pixels, use_det=True, use_cls=False, use_rec=False)
    return bool(boxes)
