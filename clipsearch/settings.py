"""clipsearch settings. Every environment variable is parsed once, in the table of
clipsearch.config (a bad value stops start-up with a message naming it); this file only turns
those values into Django's settings. All run-time state lives under CLIPSEARCH_DATA_DIR so that two
instances with different data folders never touch each other's files.
"""
import os
import secrets
from pathlib import Path

import dj_database_url

from clipsearch.config import CONFIG as ENV
from clipsearch.config import ConfigError
from embeddings.clip.config import VALIDATED_CONFIG, model_key

BASE_DIR = Path(__file__).resolve().parent.parent

DATA_DIR = Path(ENV["CLIPSEARCH_DATA_DIR"] or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
INDEX_DIR = Path(ENV["CLIPSEARCH_INDEX_DIR"] or DATA_DIR / "index")

# The CLIP service's keyword arguments, and the name this model's embeddings are stored under.
CLIP = VALIDATED_CONFIG
MODEL_KEY = model_key(CLIP["model_name"])

DEBUG = ENV["DJANGO_DEBUG"]


def _secret_key():
    if ENV["DJANGO_SECRET_KEY"]:
        return ENV["DJANGO_SECRET_KEY"]
    # No key given: keep a random one under the data folder so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = ENV["DJANGO_ALLOWED_HOSTS"]
CSRF_TRUSTED_ORIGINS = ENV["DJANGO_CSRF_TRUSTED_ORIGINS"]

# Read endpoints (search, detail, status) are public unless CLIPSEARCH_PUBLIC=false.
CLIPSEARCH_PUBLIC = ENV["CLIPSEARCH_PUBLIC"]
# Uploads and image queries: bytes per file and decoded pixels per image, checked before decoding.
MAX_UPLOAD_BYTES = ENV["CLIPSEARCH_MAX_UPLOAD_MB"] * 1024 * 1024
MAX_IMAGE_PIXELS = ENV["CLIPSEARCH_MAX_IMAGE_PIXELS"]
# How often a web process looks for index changes made by workers or deletions (seconds).
INDEX_REFRESH_SECONDS = ENV["CLIPSEARCH_INDEX_REFRESH_MS"] / 1000
# From this many vectors on, the index is approximate (IVF over fp16 vectors).
APPROX_INDEX_THRESHOLD = ENV["CLIPSEARCH_APPROX_THRESHOLD"]
INDEX_KIND = ENV["CLIPSEARCH_INDEX_KIND"]
# Libraries: minutes between the workers' periodic rescans (0: off).
LIBRARY_SCAN_MINUTES = ENV["CLIPSEARCH_LIBRARY_SCAN_MINUTES"]
# Read the text in images after their CLIP encoding (hybrid search).
OCR_ENABLED = ENV["CLIPSEARCH_OCR"]
INGEST_BATCH_SIZE = ENV["CLIPSEARCH_INGEST_BATCH_SIZE"]
CLAIM_TIMEOUT_SECONDS = ENV["CLIPSEARCH_CLAIM_TIMEOUT"]
CLAIM_LEASE_SECONDS = ENV["CLIPSEARCH_CLAIM_LEASE"]
# Searches per client per minute on the JSON API (0: no limit); counted in Redis.
SEARCH_RATE_PER_MINUTE = ENV["CLIPSEARCH_SEARCH_RATE"]
# Load the model and the index when a web process starts (clipsearch.wsgi).
WARMUP = ENV["CLIPSEARCH_WARMUP"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_rq",
    "embeddings",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "clipsearch.middleware.RequestLimits",  # body size before Django reads it; API errors as JSON
    "clipsearch.middleware.RetryReads",  # a read whose database connection died: once more, on a new one
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "clipsearch.urls"
WSGI_APPLICATION = "clipsearch.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Health checks: a connection dropped between requests (a database restart) is reopened, not failed.
DATABASES = {
    "default": dj_database_url.parse(
        ENV["DATABASE_URL"] or f"sqlite:///{DATA_DIR / 'db.sqlite3'}", conn_max_age=60, conn_health_checks=True
    )
}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # WAL + a busy timeout let the web process read while a worker writes.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 30,
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that tests can run real workers in other processes on it.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Without REDIS_URL the launcher (clipsearch.embedded_redis) runs a private Redis on this socket.
REDIS_SOCKET = DATA_DIR / "redis.sock"
REDIS_URL = ENV["REDIS_URL"] or f"unix://{REDIS_SOCKET}"
REDIS_EMBEDDED = not ENV["REDIS_URL"]
RQ_QUEUE = "embeddings"
# OCR jobs wait on their own queue, which the model worker reads after RQ_QUEUE (CLIP first).
OCR_QUEUE = "embeddings-ocr"
RQ_QUEUES = {RQ_QUEUE: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 900}, OCR_QUEUE: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 900}}
# A worker that keeps the model loaded across jobs (rq's default forks a child per job).
RQ = {"WORKER_CLASS": "embeddings.pipeline.worker.ModelWorker"}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise warns at start-up when it is missing
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "/media/"
MEDIA_ROOT = ENV["CLIPSEARCH_MEDIA_ROOT"] or DATA_DIR / "media"
# The import's decoded pictures waiting for this host's worker (embeddings.files.previews): local, never served.
PREVIEW_DIR = DATA_DIR / "previews"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}


def s3_options(values) -> dict:
    """The S3 media storage's options from the parsed variables: one bucket shared by every web and
    worker host; files are still served by the app at MEDIA_URL (embeddings.files.storage says
    why). Generated names never collide, so no "exists" request before each write; unset
    credentials fall back to boto3's usual chain (instance roles, ~/.aws)."""
    if not values["CLIPSEARCH_S3_BUCKET"]:
        raise ConfigError("CLIPSEARCH_S3_BUCKET must name the bucket when CLIPSEARCH_STORAGE=s3")
    endpoint = values["CLIPSEARCH_S3_ENDPOINT_URL"] or None
    return {
        "bucket_name": values["CLIPSEARCH_S3_BUCKET"],
        "endpoint_url": endpoint,
        "access_key": values["AWS_ACCESS_KEY_ID"] or None,
        "secret_key": values["AWS_SECRET_ACCESS_KEY"] or None,
        "region_name": values["AWS_DEFAULT_REGION"] or None,
        # S3-compatible servers (MinIO, Ceph, moto) answer on one host name: the bucket in the path.
        "addressing_style": "path" if endpoint else None,
        "file_overwrite": True,
        "default_acl": None,
        "querystring_auth": False,
    }


if ENV["CLIPSEARCH_STORAGE"] == "s3":
    STORAGES["default"] = {"BACKEND": "embeddings.files.storage.S3Media", "OPTIONS": s3_options(ENV)}

WHITENOISE_USE_FINDERS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1000

LOGIN_URL = "admin:login"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Behind HTTPS (production): secure cookies, HSTS, redirect; `manage.py check --deploy` is clean.
if ENV["CLIPSEARCH_HTTPS"]:
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "embeddings": {"handlers": ["console"], "level": CLIP["log_level"], "propagate": False},
        "rq.worker": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}
