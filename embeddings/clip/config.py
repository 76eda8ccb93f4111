"""The CLIP service's settings, taken from the one settings table (clipsearch.config), and
model names: the "demo" alias and the key embeddings are stored under.

`VALIDATED_CONFIG` is the seed-compatible dict: `CLIPService(**VALIDATED_CONFIG)` works.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from clipsearch import config as table
from clipsearch.config import DEFAULT_MODEL_NAME, ConfigError  # noqa: F401  (re-exported for callers)

# The bundled demo model; "demo" is accepted as a short alias for its directory.
DEMO_MODEL_DIR = Path(__file__).resolve().parents[2] / "demo" / "model"
DEMO_ALIAS = "demo"

# CLIP_* variable -> CLIPService keyword argument
SERVICE_ARGS = {
    "CLIP_MODEL_NAME": "model_name", "CLIP_BATCH_SIZE": "batch_size", "CLIP_MAX_WORKERS": "max_workers",
    "CLIP_GPU_MEMORY_THRESHOLD": "gpu_memory_threshold", "CLIP_ENABLE_CACHING": "enable_caching",
    "CLIP_FALLBACK_TO_CPU": "fallback_to_cpu", "CLIP_LOG_LEVEL": "log_level", "CLIP_DEVICE": "device",
    "CLIP_PRECISION": "precision", "CLIP_ENGINE": "engine",
}


def load_config(env: Mapping[str, str] | None = None) -> dict:
    """The CLIPService keyword arguments from `env` (default: the values parsed at start-up)."""
    values = table.CONFIG if env is None else table.load(env)
    return {arg: values[var] for var, arg in SERVICE_ARGS.items()}


VALIDATED_CONFIG = load_config()


def resolve_model_name(name: str) -> str:
    """Map the "demo" alias to the bundled directory; anything else is a hub id or a path."""
    return str(DEMO_MODEL_DIR) if name == DEMO_ALIAS else name


def is_demo_model(name: str) -> bool:
    try:
        return Path(resolve_model_name(name)).resolve() == DEMO_MODEL_DIR
    except OSError:
        return False


def model_key(name: str) -> str:
    """The name embeddings are stored under: stable whether the demo is named by alias or path."""
    return DEMO_ALIAS if is_demo_model(name) else name
