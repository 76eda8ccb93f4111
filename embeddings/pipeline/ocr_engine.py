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
_look = None  # the engine with a detector of its own for first looks (has_text)


def start(nice: int, threads: int) -> None:
    """The child's initialiser: lower its CPU priority (its threads inherit it), load the engine."""
    global _engine, _look
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), name="ocr-parent-watch", daemon=True).start()
    try:
        os.nice(nice)
    except (AttributeError, OSError):
        pass
    _engine, _look = _build(threads)


def _exit_with_parent(parent: int) -> None:
    # A worker killed outright (SIGKILL, the OOM killer) never shuts its pool down, and the reader
    # would outlive it with its ~200 MB (test runs left two such orphans each): leave with it.
    while os.getppid() == parent:
        time.sleep(1)
    os._exit(0)


def _build(threads: int):
    """The reading engine, and a copy of it whose detector may spin (for the first looks)."""
    import copy

    from rapidocr_onnxruntime import RapidOCR
    from rapidocr_onnxruntime.ch_ppocr_det import TextDetector
    from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
    from rapidocr_onnxruntime.utils import UpdateParameters, infer_engine, read_yaml, update_model_path

    per_model = {f"{m}_{k}": v for m in ("det", "cls", "rec")
                 for k, v in (("intra_op_num_threads", threads), ("inter_op_num_threads", 1))}
    # "max": scale only large pictures down for detection; the default ("min") blows small
    # ones up to 736 px, which costs a second per thumbnail-sized image.
    options = dict(det_limit_side_len=960, det_limit_type="max", **per_model)
    # ONNX Runtime's pool threads spin between runs by default, taking CPU from a CLIP batch being
    # encoded meanwhile (full reads run beside the encoding); RapidOCR builds its sessions' options
    # itself, so its builder is wrapped.
    original = infer_engine.OrtInferSession._init_sess_opts

    def quiet(config):
        sess_options = original(config)
        sess_options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return sess_options

    infer_engine.OrtInferSession._init_sess_opts = staticmethod(quiet)
    try:
        engine = RapidOCR(**options)
    finally:
        infer_engine.OrtInferSession._init_sess_opts = staticmethod(original)
    # First looks run while their worker waits for them (after its batch's CLIP encode), so their
    # detector spins between operators: 40 vs 53 ms at 512x384, 83 vs 117 ms at 640x480 (AVX2, 2 threads).
    look = copy.copy(engine)
    look.text_det = TextDetector(UpdateParameters()(update_model_path(read_yaml(DEFAULT_CFG_PATH)), **options)["Det"])
    return engine, look


def read_lines(pixels: np.ndarray) -> list[str]:
    """The text lines in an RGB array, top to bottom."""
    result, _ = _engine(pixels)
    lines = [str(text).strip() for _box, text, score in (result or []) if float(score) >= MIN_CONFIDENCE]
    return [line for line in lines if line]


def _line_shaped(box) -> bool:
    """A detected region shaped like text: a line is several letters long, so its box is long and thin
    (any orientation). What detection finds in photos without text is blobs: long/short 1.0-2.05 in
    the 0.3 and 12 MP photos of bench/ocr_first_look.py; its text boxes ran 4.4-9.3 (one corner word
    1.7, lost). A look that took every box sent 22% of 12 MP photos without text to the full read
    (0.47 s each). The second clause keeps short words ("EXIT") where they are small; the bench's
    pictures hold none, so it is not measured."""
    corners = np.asarray(box, dtype=np.float32)
    sides = sorted((float(np.linalg.norm(corners[1] - corners[0])), float(np.linalg.norm(corners[3] - corners[0]))))
    short, long = max(sides[0], 1.0), sides[1]
    return long >= 2.2 * short or (long >= 1.6 * short and short <= 40)


def has_text(pixels: np.ndarray) -> bool:
    """Whether text detection alone (no recognition) finds a line-shaped box in an RGB array."""
    boxes, _ = _look(pixels, use_det=True, use_cls=False, use_rec=False)
    return any(_line_shaped(box) for box in (boxes if boxes is not None else []))
