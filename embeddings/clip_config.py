"""CLIP service settings: read from the environment and validated once per process.

Kept free of torch/Django imports so that settings.py can validate at start-up cheaply.
`VALIDATED_CONFIG` is the seed-compatible dict: `CLIPService(**VALIDATED_CONFIG)` works.
"""
from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

DEFAULT_MODEL_NAME = "openai/clip-vit-base-patch32"
# The bundled demo model (spec section 4); "demo" is accepted as a short alias for it.
DEMO_MODEL_DIR = Path(__file__).resolve().parent / "demo_model"
DEMO_ALIAS = "demo"

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class ConfigError(ValueError):
    """A CLIP_* variable has a value we cannot use; the message names it."""


def resolve_model_name(name: str) -> str:
    """Map the "demo" alias to the bundled directory; anything else is a hub id or a path."""
    return str(DEMO_MODEL_DIR) if name == DEMO_ALIAS else name


def is_demo_model(name: str) -> bool:
    try:
        return Path(resolve_model_name(name)).resolve() == DEMO_MODEL_DIR
    except OSError:
        return False


def _int(env, var, default, minimum):
    raw = env.get(var, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{var} must be an integer >= {minimum}, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{var} must be an integer >= {minimum}, got {raw!r}")
    return value


def _float(env, var, default, minimum):
    raw = env.get(var, "").strip()
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{var} must be a number >= {minimum}, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{var} must be a number >= {minimum}, got {raw!r}")
    return value


def _bool(env, var, default):
    raw = env.get(var, "").strip().lower()
    if raw == "":
        return default
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigError(f"{var} must be one of true/false/1/0/yes/no/on/off, got {env.get(var)!r}")


def _choice(env, var, default, choices, upper=False):
    raw = env.get(var, "").strip()
    if raw == "":
        return default
    value = raw.upper() if upper else raw.lower()
    if value not in choices:
        raise ConfigError(f"{var} must be one of {', '.join(choices)}, got {raw!r}")
    return value


def load_config(env: Mapping[str, str] | None = None) -> dict:
    """Validate the CLIP_* variables; raise ConfigError naming the first bad one."""
    env = os.environ if env is None else env
    model_name = env.get("CLIP_MODEL_NAME", "").strip() or DEFAULT_MODEL_NAME
    return {
        "model_name": model_name,
        "batch_size": _int(env, "CLIP_BATCH_SIZE", 32, 1),
        "max_workers": _int(env, "CLIP_MAX_WORKERS", 4, 1),
        "gpu_memory_threshold": _float(env, "CLIP_GPU_MEMORY_THRESHOLD", 2.0, 0.0),
        "enable_caching": _bool(env, "CLIP_ENABLE_CACHING", True),
        "fallback_to_cpu": _bool(env, "CLIP_FALLBACK_TO_CPU", True),
        "log_level": _choice(env, "CLIP_LOG_LEVEL", "INFO", LOG_LEVELS, upper=True),
        "device": _choice(env, "CLIP_DEVICE", "auto", DEVICES),
        "precision": _choice(env, "CLIP_PRECISION", "auto", PRECISIONS),
    }


VALIDATED_CONFIG = load_config()
logging.getLogger("embeddings").setLevel(VALIDATED_CONFIG["log_level"])


def model_key(name: str) -> str:
    """The name embeddings are stored under: stable whether the demo is named by alias or path."""
    return DEMO_ALIAS if is_demo_model(name) else name


MODEL_KEY = model_key(VALIDATED_CONFIG["model_name"])
