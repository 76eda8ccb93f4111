"""CLIP_* environment validation (embeddings/clip/config.py)."""
import inspect

import pytest

from embeddings.clip import config as clip_config
from embeddings.clip.config import ConfigError, load_config

GOOD = {
    "CLIP_MODEL_NAME": [("demo", "demo"), ("/models/clip", "/models/clip"), ("  ", clip_config.DEFAULT_MODEL_NAME)],
    "CLIP_BATCH_SIZE": [("1", 1), ("64", 64), (" 8 ", 8), ("", 32)],
    "CLIP_MAX_WORKERS": [("1", 1), ("16", 16), ("", 4)],
    "CLIP_GPU_MEMORY_THRESHOLD": [("0", 0.0), ("2.5", 2.5), ("", 2.0)],
    "CLIP_ENABLE_CACHING": [("false", False), ("0", False), ("YES", True), ("on", True), ("", True)],
    "CLIP_FALLBACK_TO_CPU": [("no", False), ("off", False), ("1", True), ("True", True), ("", True)],
    "CLIP_LOG_LEVEL": [("debug", "DEBUG"), ("WARNING", "WARNING"), ("", "INFO")],
    "CLIP_DEVICE": [("cpu", "cpu"), ("CUDA", "cuda"), ("auto", "auto"), ("", "auto")],
    "CLIP_PRECISION": [("fp32", "fp32"), ("bf16", "bf16"), ("FP16", "fp16"), ("auto", "auto"), ("", "auto")],
    "CLIP_ENGINE": [("onnx", "onnx"), ("Torch", "torch"), ("auto", "auto"), ("", "auto")],
}
BAD = {
    "CLIP_BATCH_SIZE": ["0", "-1", "abc", "3.5"],
    "CLIP_MAX_WORKERS": ["0", "many"],
    "CLIP_GPU_MEMORY_THRESHOLD": ["-1", "lots", "nan", "inf"],
    "CLIP_ENABLE_CACHING": ["maybe", "2"],
    "CLIP_FALLBACK_TO_CPU": ["perhaps"],
    "CLIP_LOG_LEVEL": ["LOUD", "5"],
    "CLIP_DEVICE": ["gpu", "tpu", "mps0"],
    "CLIP_PRECISION": ["int4", "fp64", "half"],
    "CLIP_ENGINE": ["tensorrt", "ort", "1"],
}
KEY = {"CLIP_MODEL_NAME": "model_name", "CLIP_BATCH_SIZE": "batch_size", "CLIP_MAX_WORKERS": "max_workers",
       "CLIP_GPU_MEMORY_THRESHOLD": "gpu_memory_threshold", "CLIP_ENABLE_CACHING": "enable_caching",
       "CLIP_FALLBACK_TO_CPU": "fallback_to_cpu", "CLIP_LOG_LEVEL": "log_level", "CLIP_DEVICE": "device",
       "CLIP_PRECISION": "precision", "CLIP_ENGINE": "engine"}


@pytest.mark.parametrize("var,raw,expected", [(v, r, e) for v, cases in GOOD.items() for r, e in cases])
def test_good_values(var, raw, expected):
    assert load_config({var: raw})[KEY[var]] == expected


@pytest.mark.parametrize("var,raw", [(v, r) for v, raws in BAD.items() for r in raws])
def test_bad_values_name_the_variable(var, raw):
    with pytest.raises(ConfigError) as exc:
        load_config({var: raw})
    assert var in str(exc.value)
    assert raw.strip() in str(exc.value)


def test_defaults_from_empty_environment():
    cfg = load_config({})
    assert cfg == {"model_name": clip_config.DEFAULT_MODEL_NAME, "batch_size": 32, "max_workers": 4,
                   "gpu_memory_threshold": 2.0, "enable_caching": True, "fallback_to_cpu": True,
                   "log_level": "INFO", "device": "auto", "precision": "auto", "engine": "auto"}


def test_config_error_is_value_error():
    assert issubclass(ConfigError, ValueError)


def test_validated_config_keys_match_clip_service():
    from embeddings.clip.service import CLIPService

    params = inspect.signature(CLIPService).parameters
    assert set(clip_config.VALIDATED_CONFIG) <= set(params)
    assert set(clip_config.VALIDATED_CONFIG) == set(KEY.values())
    service = CLIPService(**clip_config.VALIDATED_CONFIG)  # construction does not load the model
    assert service.batch_size == clip_config.VALIDATED_CONFIG["batch_size"]


def test_demo_alias_resolves_to_bundled_directory():
    assert clip_config.resolve_model_name("demo") == str(clip_config.DEMO_MODEL_DIR)
    assert clip_config.resolve_model_name("openai/clip-vit-base-patch32") == "openai/clip-vit-base-patch32"
    assert clip_config.is_demo_model("demo")
    assert clip_config.is_demo_model(str(clip_config.DEMO_MODEL_DIR))
    assert not clip_config.is_demo_model("openai/clip-vit-base-patch32")
