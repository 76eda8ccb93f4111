"""Every environment variable clipsearch reads: one table, parsed once per process.

Each row gives the variable, its default, how its text is parsed and what it means; the README's
configuration table lists the same rows (a test checks both ways). A bad value raises ConfigError
naming the variable and what it accepts, so start-up stops with that message. Django settings,
the CLIP service and the launcher all read the parsed values from here; nothing else reads
os.environ. No Django or torch import here: the launcher and the CLIP package use it bare.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


class ConfigError(ValueError):
    """An environment variable has a value we cannot use; the message names it."""


@dataclass(frozen=True)
class Var:
    name: str
    default: object  # the parsed value used when the variable is unset or blank
    parse: Callable[[str, str], object]  # (name, raw text) -> value, or ConfigError
    help: str
    shown: str = ""  # the default as the README shows it, where it is not just `default`


def integer(minimum: int):
    def parse(name, raw):
        try:
            value = int(raw)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise ConfigError(f"{name} must be an integer >= {minimum}, got {raw!r}")
        return value

    return parse


def number(minimum: float):
    def parse(name, raw):
        try:
            value = float(raw)
        except ValueError:
            value = None
        # `not value >= minimum` also refuses NaN
        if value is None or not value >= minimum or value == float("inf"):
            raise ConfigError(f"{name} must be a number >= {minimum}, got {raw!r}")
        return value

    return parse


def boolean(name, raw):
    if raw.lower() in TRUE:
        return True
    if raw.lower() in FALSE:
        return False
    raise ConfigError(f"{name} must be one of true/false/1/0/yes/no/on/off, got {raw!r}")


def choice(*choices: str, upper: bool = False):
    def parse(name, raw):
        value = raw.upper() if upper else raw.lower()
        if value not in choices:
            raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
        return value

    return parse


def text(name, raw):
    return raw


def words(name, raw):
    """A comma-separated list."""
    return [w.strip() for w in raw.split(",") if w.strip()]


DEFAULT_MODEL_NAME = "openai/clip-vit-base-patch32"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

VARS = [
    # -- where things live
    Var("CLIPSEARCH_DATA_DIR", "", text, "everything written at run time: SQLite, media, index, Redis socket, "
        "secret key", shown="`var/`"),
    Var("CLIPSEARCH_MEDIA_ROOT", "", text, "uploaded files and thumbnails (a local folder)",
        shown="`<data dir>/media`"),
    Var("CLIPSEARCH_INDEX_DIR", "", text, "FAISS index files (local disk of each web host)",
        shown="`<data dir>/index`"),
    Var("CLIPSEARCH_STORAGE", "filesystem", choice("filesystem", "s3"), "where uploads and thumbnails "
        "live: `filesystem` (the media folder) or `s3` (a bucket shared by every host)"),
    Var("CLIPSEARCH_S3_BUCKET", "", text, "the bucket, with `CLIPSEARCH_STORAGE=s3` (required then)", shown="none"),
    Var("CLIPSEARCH_S3_ENDPOINT_URL", "", text, "any S3-compatible server (`https://minio.example.org:9000`)",
        shown="AWS S3"),
    Var("AWS_ACCESS_KEY_ID", "", text, "credentials for `s3`", shown="boto3's usual chain"),
    Var("AWS_SECRET_ACCESS_KEY", "", text, "credentials for `s3`", shown="boto3's usual chain"),
    Var("AWS_DEFAULT_REGION", "", text, "the bucket's region for `s3`", shown="boto3's usual chain"),
    Var("DATABASE_URL", "", text, "e.g. `postgres://user@host:5432/clipsearch`",
        shown="SQLite under the data folder"),
    Var("REDIS_URL", "", text, "e.g. `redis://127.0.0.1:6379/0`",
        shown="embedded Redis on a socket in the data folder"),
    # -- Django and deployment
    Var("DJANGO_SECRET_KEY", "", text, "set it in production", shown="random, kept in the data folder"),
    Var("DJANGO_DEBUG", False, boolean, "Django's debug pages; never in production"),
    Var("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"], words, "comma-separated host names",
        shown="`localhost,127.0.0.1,[::1]`"),
    Var("DJANGO_CSRF_TRUSTED_ORIGINS", [], words, "comma-separated origins (`https://photos.example.org`) "
        "when served behind a proxy on another origin", shown="none"),
    Var("CLIPSEARCH_HTTPS", False, boolean, "behind TLS: secure cookies, HSTS, redirect to HTTPS, trust "
        "`X-Forwarded-Proto` from the proxy"),
    Var("CLIPSEARCH_PUBLIC", True, boolean, "`false`: reading needs a login or an API token"),
    Var("CLIPSEARCH_HOST", "127.0.0.1", text, "address `make demo` / `make run` serve on"),
    Var("CLIPSEARCH_PORT", 8000, integer(1), "port `make demo` / `make run` serve on"),
    Var("CLIPSEARCH_WORKERS", 1, integer(0), "workers started by `make demo` / `make run`"),
    Var("WEB_CONCURRENCY", 2, integer(1), "gunicorn processes started by `make run`"),
    Var("CLIPSEARCH_WARMUP", True, boolean, "load the model and the index when a web process starts, "
        "not on its first request"),
    # -- limits
    Var("CLIPSEARCH_MAX_UPLOAD_MB", 50, integer(1), "bytes per file, for uploads and image queries"),
    Var("CLIPSEARCH_MAX_IMAGE_PIXELS", 100_000_000, integer(1), "larger images are refused before they "
        "are decoded (decompression bombs), on every path"),
    Var("CLIPSEARCH_SEARCH_RATE", 600, integer(0), "API searches per client per minute (0: no limit), "
        "counted in Redis"),
    # -- ingest and index
    Var("CLIPSEARCH_INGEST_BATCH_SIZE", 32, integer(1), "images claimed per worker batch"),
    Var("CLIPSEARCH_CLAIM_LEASE", 20, integer(2), "seconds a worker's claim lives in Redis without a "
        "heartbeat; a killed worker's images go back to pending after it"),
    Var("CLIPSEARCH_CLAIM_TIMEOUT", 600, integer(10), "seconds after which a claim is presumed dead even "
        "when its lease cannot be checked"),
    Var("CLIPSEARCH_INDEX_REFRESH_MS", 1000, integer(50), "how often a web process looks for index changes"),
    Var("CLIPSEARCH_APPROX_THRESHOLD", 50_000, integer(1000), "from this many vectors the index is "
        "approximate"),
    Var("CLIPSEARCH_INDEX_KIND", "auto", choice("auto", "flat", "ivf-fp16", "ivf-pq"),
        "`auto` picks by collection size; `flat`, `ivf-fp16`, `ivf-pq` force one"),
    # -- libraries and hybrid search
    Var("CLIPSEARCH_LIBRARY_SCAN_MINUTES", 60, integer(0), "workers rescan every library this often "
        "(0: never; `library scan` and the admin still do)"),
    Var("CLIPSEARCH_OCR", True, boolean, "read the text in each image (after its CLIP encoding) so that "
        "searches find words and numbers in pictures"),
    # -- the CLIP service (seed-compatible names)
    Var("CLIP_MODEL_NAME", DEFAULT_MODEL_NAME, text, "a Hugging Face id, a local directory, or `demo`",
        shown=f"`{DEFAULT_MODEL_NAME}` (`demo` in `make demo` and tests)"),
    Var("CLIP_DEVICE", "auto", choice("auto", "cpu", "cuda"), "`auto`, `cpu`, `cuda`"),
    Var("CLIP_PRECISION", "auto", choice("auto", "fp32", "bf16", "fp16", "int8"),
        "`auto` (CPU: int8 on ONNX Runtime; with `CLIP_ENGINE=torch` bf16 on CPUs with native bf16, else fp32; "
        "fp16 on CUDA), `fp32`, `bf16`, `fp16`, `int8` (CPU: image tower quantised to int8, cosine to fp32 "
        ">= 0.9998; the text tower stays fp32)"),
    Var("CLIP_ENGINE", "auto", choice("auto", "torch", "onnx"), "`auto` (ONNX Runtime on the CPU, torch on "
        "CUDA and for bf16/fp16), `torch`, `onnx` (the towers exported once, cached in `<data dir>/onnx`)"),
    Var("CLIP_BATCH_SIZE", 32, integer(1), "images per forward pass"),
    Var("CLIP_MAX_WORKERS", 4, integer(1), "decode threads"),
    Var("CLIP_GPU_MEMORY_THRESHOLD", 2.0, number(0.0), "GB free needed to choose CUDA"),
    Var("CLIP_ENABLE_CACHING", True, boolean, "one loaded model per process, shared"),
    Var("CLIP_FALLBACK_TO_CPU", True, boolean, "retry on CPU after CUDA out-of-memory"),
    Var("CLIP_LOG_LEVEL", "INFO", choice(*LOG_LEVELS, upper=True), "log level of the app's own messages"),
]
TABLE = {v.name: v for v in VARS}


def load(env: Mapping[str, str] | None = None) -> dict:
    """Parse every variable of the table from `env` (default: the process environment)."""
    env = os.environ if env is None else env
    values = {}
    for var in VARS:
        raw = (env.get(var.name) or "").strip()
        values[var.name] = var.default if raw == "" else var.parse(var.name, raw)
    return values


CONFIG = load()
