"""clipsearch settings: everything is read from the environment here, once, and validated.

A bad value stops start-up with a message naming the variable (see embeddings.clip_config for
the CLIP_* ones). All run-time state lives under CLIPSEARCH_DATA_DIR so that two instances with
different data folders never touch each other's files.
"""
import os
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured


BASE_DIR = Path(__file__).resolve().parent.parent
ENV = os.environ


def env_bool(name, default):
    raw = ENV.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, got {ENV[name]!r}")


def env_int(name, default, minimum=0):
    raw = ENV.get(name, "").strip()
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = None
    if value is None or value < minimum:
        raise ImproperlyConfigured(f"{name} must be an integer >= {minimum}, got {raw!r}")
    return value


DATA_DIR = Path(ENV.get("CLIPSEARCH_DATA_DIR") or BASE_DIR / "var").resolve()
DATA_DIR.mkdir(parents=True, exist_ok=True)
INDEX_DIR = Path(ENV.get("CLIPSEARCH_INDEX_DIR") or DATA_DIR / "index")

# Validated once, at import; a bad CLIP_* value raises ConfigError naming the variable.
from embeddings.clip_config import VALIDATED_CONFIG as CLIP  # noqa: E402

DEBUG = env_bool("DJANGO_DEBUG", False)


def _secret_key():
    if ENV.get("DJANGO_SECRET_KEY"):
        return ENV["DJANGO_SECRET_KEY"]
    # No key given: keep a random one under the data folder so sessions survive restarts.
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = _secret_key()
ALLOWED_HOSTS = [h.strip() for h in ENV.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h.strip()]
CSRF_TRUSTED_ORIGINS = [o.strip() for o in ENV.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()]

# Read endpoints (search, detail, status) are public unless CLIPSEARCH_PUBLIC=false.
CLIPSEARCH_PUBLIC = env_bool("CLIPSEARCH_PUBLIC", True)
# Uploads: bytes per file and decoded pixels per image; both checked before encoding.
MAX_UPLOAD_BYTES = env_int("CLIPSEARCH_MAX_UPLOAD_MB", 50, 1) * 1024 * 1024
MAX_IMAGE_PIXELS = env_int("CLIPSEARCH_MAX_IMAGE_PIXELS", 100_000_000, 1)
# How often a web process looks for index changes made by workers or deletions (seconds).
INDEX_REFRESH_SECONDS = float(env_int("CLIPSEARCH_INDEX_REFRESH_MS", 1000, 50)) / 1000
# Images claimed per worker batch.
INGEST_BATCH_SIZE = env_int("CLIPSEARCH_INGEST_BATCH_SIZE", 32, 1)
# A claim older than this is presumed dead (worker killed) and goes back to pending.
CLAIM_TIMEOUT_SECONDS = env_int("CLIPSEARCH_CLAIM_TIMEOUT", 600, 10)
# A worker renews its claim lease in Redis every quarter of this; a killed worker's expires.
CLAIM_LEASE_SECONDS = env_int("CLIPSEARCH_CLAIM_LEASE", 20, 2)

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

DATABASES = {
    "default": dj_database_url.parse(
        ENV.get("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'db.sqlite3'}", conn_max_age=60
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
REDIS_URL = ENV.get("REDIS_URL") or f"unix://{REDIS_SOCKET}"
REDIS_EMBEDDED = not ENV.get("REDIS_URL")
RQ_QUEUE = "embeddings"
RQ_QUEUES = {RQ_QUEUE: {"URL": REDIS_URL, "DEFAULT_TIMEOUT": 900}}
# A worker that keeps the model loaded across jobs (rq's default forks a child per job).
RQ = {"WORKER_CLASS": "embeddings.worker.ModelWorker"}

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
MEDIA_ROOT = ENV.get("CLIPSEARCH_MEDIA_ROOT") or DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = 1000

LOGIN_URL = "admin:login"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Behind HTTPS (production): secure cookies, HSTS, redirect; `manage.py check --deploy` is clean.
if env_bool("CLIPSEARCH_HTTPS", False):
    SECURE_SSL_REDIRECT = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31536000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = True
# Searches per client per minute on the JSON API (0: no limit); counted in Redis.
SEARCH_RATE_PER_MINUTE = env_int("CLIPSEARCH_SEARCH_RATE", 600, 0)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {
        "embeddings": {"handlers": ["console"], "level": CLIP["log_level"], "propagate": False},
        "rq.worker": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}

# From this many vectors on, the index is approximate (IVF over fp16 vectors).
APPROX_INDEX_THRESHOLD = env_int("CLIPSEARCH_APPROX_THRESHOLD", 50_000, 1000)
