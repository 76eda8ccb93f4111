"""The environment-variable table (clipsearch.config): defaults, parsing, and errors naming the variable."""

import pytest

from clipsearch import config
from clipsearch.config import ConfigError


# ---- the environment-variable table -----------------------------------------------------------
def test_config_defaults_when_unset_or_blank():
    values = config.load({})
    assert set(values) == {v.name for v in config.VARS}
    assert values == config.load({name: "  " for name in values})
    assert values["CLIPSEARCH_PORT"] == 8000 and values["CLIPSEARCH_PUBLIC"] is True
    assert values["CLIPSEARCH_MAX_UPLOAD_MB"] == 50


def test_config_parses_good_values():
    values = config.load({
        "CLIPSEARCH_MAX_UPLOAD_MB": "7",
        "CLIPSEARCH_PUBLIC": "No",
        "CLIPSEARCH_HTTPS": " on ",
        "CLIPSEARCH_PORT": "8080",
        "CLIPSEARCH_SEARCH_RATE": "0",
        "DJANGO_ALLOWED_HOSTS": "a.example, b.example,,",
        "CLIP_DEVICE": "CPU",
        "CLIP_LOG_LEVEL": "debug",
        "CLIP_GPU_MEMORY_THRESHOLD": "0.5",
        "UNRELATED": "ignored",
    })
    assert values["CLIPSEARCH_MAX_UPLOAD_MB"] == 7
    assert values["CLIPSEARCH_PUBLIC"] is False
    assert values["CLIPSEARCH_HTTPS"] is True
    assert values["CLIPSEARCH_PORT"] == 8080
    assert values["CLIPSEARCH_SEARCH_RATE"] == 0
    assert values["DJANGO_ALLOWED_HOSTS"] == ["a.example", "b.example"]
    assert values["CLIP_DEVICE"] == "cpu"
    assert values["CLIP_LOG_LEVEL"] == "DEBUG"
    assert values["CLIP_GPU_MEMORY_THRESHOLD"] == 0.5
    assert "UNRELATED" not in values


@pytest.mark.parametrize("name, raw", [
    ("CLIPSEARCH_MAX_UPLOAD_MB", "0"),
    ("CLIPSEARCH_MAX_UPLOAD_MB", "ten"),
    ("CLIPSEARCH_PUBLIC", "maybe"),
    ("CLIPSEARCH_PORT", "x"),
    ("CLIPSEARCH_PORT", "0"),
    ("CLIPSEARCH_PORT", "80.5"),
    ("CLIPSEARCH_CLAIM_LEASE", "1"),
    ("CLIPSEARCH_SEARCH_RATE", "-1"),
    ("CLIP_DEVICE", "tpu"),
    ("CLIP_GPU_MEMORY_THRESHOLD", "nan"),
    ("CLIP_GPU_MEMORY_THRESHOLD", "inf"),
    ("CLIP_LOG_LEVEL", "loud"),
])
def test_config_bad_value_names_the_variable(name, raw):
    with pytest.raises(ConfigError) as exc:
        config.load({name: raw})
    assert name in str(exc.value)
    assert repr(raw) in str(exc.value)
