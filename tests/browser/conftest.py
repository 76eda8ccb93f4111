"""Fixtures of the browser tests: one headless Chromium per run, pages that fail their test on any
JavaScript error, and the indexed demo gallery. The gallery goes through the real upload and ingest
once per run; later tests get the same rows, vectors and files back from a snapshot in well under a
second, instead of encoding 240 images again (pytest-django's live server empties the database
after every test)."""
import os
import shutil

import pytest
from django.core.management.color import no_style
from django.db import connection
from playwright.sync_api import expect, sync_playwright

from tests.browser.helpers import CHROMIUM, GALLERY_SIZE, LAUNCH_ARGS
from tests.support import jpeg_bytes, upload_and_ingest

# Assertions wait as long as actions do (15 s): on a loaded 2-core machine a page's first API write is slow.
expect.set_options(timeout=15_000)

# Playwright's sync API runs an event loop in this thread; the ORM calls of the test (and of the
# live server thread) are still plain synchronous code.
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"


# Package scope: Playwright's loop must stop before later packages' tests call asyncio.run().
@pytest.fixture(scope="package")
def browser():
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=LAUNCH_ARGS)
        yield b
        b.close()


@pytest.fixture
def new_page(browser):
    """new_page(width=1280, height=1000, **context options) -> a page; JavaScript errors fail the test."""
    contexts, errors = [], []

    def make(width=1280, height=1000, **options):
        context = browser.new_context(viewport={"width": width, "height": height}, **options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        pg = context.new_page()
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        return pg

    yield make
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture(scope="session")
def gallery_images():
    """(jpeg bytes, meta) pairs; image i is shown under the name demo_filename(i, meta)."""
    from demo.synth import gallery

    return [(jpeg_bytes(img), meta) for img, meta in gallery(GALLERY_SIZE, seed=4242)]


@pytest.fixture(scope="session")
def gallery_files(gallery_images):
    """(file name, jpeg bytes) pairs of the gallery."""
    from demo.synth import demo_filename

    return [(demo_filename(i, meta), data) for i, (data, meta) in enumerate(gallery_images)]


_SNAPSHOT = {}


@pytest.fixture
def loaded(transactional_db, redis, settings, gallery_images, tmp_path_factory):
    """The gallery, indexed; its Image rows in gallery order."""
    from embeddings.models import Embedding, Image

    if not _SNAPSHOT:
        rows = upload_and_ingest(gallery_images, redis)
        media = tmp_path_factory.mktemp("gallery-media")
        shutil.copytree(settings.MEDIA_ROOT, media, dirs_exist_ok=True)
        _SNAPSHOT.update(media=media, images=list(Image.objects.order_by("pk").values()),
                         embeddings=[dict(e, vector=bytes(e["vector"])) for e in Embedding.objects.values()])
        return rows
    shutil.copytree(_SNAPSHOT["media"], settings.MEDIA_ROOT, dirs_exist_ok=True)
    Image.objects.bulk_create([Image(**row) for row in _SNAPSHOT["images"]])
    Embedding.objects.bulk_create([Embedding(**row) for row in _SNAPSHOT["embeddings"]])
    with connection.cursor() as cursor:  # rows came with their ids: new rows must not collide with them
        for sql in connection.ops.sequence_reset_sql(no_style(), [Image, Embedding]):
            cursor.execute(sql)
    return list(Image.objects.order_by("pk"))
