"""Shared fixtures. Tests talk to the real Redis (REDIS_URL, or the embedded one started here),
the real database (PostgreSQL in CI through DATABASE_URL, else SQLite) and real workers.
Plain helpers are in tests/support.py."""
import pytest
from django.conf import settings

from tests.support import jpeg_bytes, make_staff, make_token, upload_and_ingest


@pytest.fixture(scope="session")
def redis_server():
    """The Redis the app uses: the configured one, or the embedded one under the data folder."""
    from clipsearch import embedded_redis

    # Ours to stop only if this run started it (another run on the same data folder may share it).
    ours = settings.REDIS_EMBEDDED and not embedded_redis.ping(settings.REDIS_SOCKET)
    if settings.REDIS_EMBEDDED:
        embedded_redis.start(settings.DATA_DIR)
    import django_rq

    try:
        conn = django_rq.get_connection(settings.RQ_QUEUE)
        conn.ping()
        yield conn
    finally:
        if ours:  # --daemonize: left alone it would outlive the run, orphaned to init
            embedded_redis.stop(settings.DATA_DIR)


def pytest_configure(config):
    """A run stopped by SIGTERM (CI's timeout, a supervisor) tears down like one stopped by ^C, so
    the session fixtures stop what they started (the embedded Redis, the S3 server)."""
    import signal

    def interrupt(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)


@pytest.fixture(scope="session")
def s3_endpoint():
    """A real S3 HTTP API (moto's server) on 127.0.0.1, in its own process, for this run."""
    from tests import s3

    proc, endpoint = s3.start_server()
    try:
        yield endpoint
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture
def s3_media(s3_endpoint, settings, monkeypatch):
    """This test's media in a new bucket of that server, for this process (STORAGES) and for the
    workers, commands and web hosts it starts (the operator's variables); returns (endpoint, bucket)."""
    from tests import s3

    bucket = s3.new_bucket(s3_endpoint)
    for name, value in s3.env(s3_endpoint, bucket).items():
        monkeypatch.setenv(name, value)
    settings.STORAGES = s3.storages(s3_endpoint, bucket)
    return s3_endpoint, bucket


@pytest.fixture
def redis(redis_server):
    redis_server.flushdb()
    yield redis_server
    redis_server.flushdb()


@pytest.fixture(autouse=True)
def _isolated_files(settings, tmp_path):
    """Each test gets its own media and index folders and a fresh in-memory index."""
    from embeddings.index.vector_index import reset_indexes
    from embeddings.search.answer import forget_cameras

    forget_cameras()
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.INDEX_DIR = tmp_path / "index"
    settings.PREVIEW_DIR = tmp_path / "previews"
    reset_indexes()
    yield
    reset_indexes()


@pytest.fixture(scope="session")
def demo_images():
    """A small drawn gallery: (jpeg bytes, meta) pairs."""
    from demo.synth import gallery

    return [(jpeg_bytes(img), meta) for img, meta in gallery(96, seed=777)]


@pytest.fixture
def indexed_gallery(redis, demo_images):
    """The first 24 demo images, stored under their demo file names and indexed; the Image rows."""
    return upload_and_ingest(demo_images[:24], redis)


@pytest.fixture
def staff_user():
    return make_staff()


@pytest.fixture
def staff_client(client, staff_user):
    """Django's test client, logged in as the staff user."""
    client.force_login(staff_user)
    return client


@pytest.fixture
def token(staff_user):
    """An API token of the staff user."""
    return make_token(staff_user.username)


@pytest.fixture
def auth(token):
    """Test-client keyword arguments that send the staff user's token."""
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
