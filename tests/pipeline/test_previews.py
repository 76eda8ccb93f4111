"""A large photo is decoded once: the import leaves its decoded picture (embeddings.files.previews)
and the worker encodes that instead of the original, with the real model, database and Redis."""
import io

import numpy as np
import pytest
from django.core.management import call_command
from PIL import Image as PILImage

from embeddings import services
from embeddings.clip.service import get_clip_service
from embeddings.files import originals, previews
from embeddings.models import Embedding, Image
from embeddings.pipeline import ingest
from tests.support import jpeg_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def photo(w: int, h: int, exif_orientation: int | None = None, fmt: str = "JPEG") -> bytes:
    """A photo-like picture: a smooth colour field with sensor noise (seeded by its size)."""
    rng = np.random.default_rng(w * h)
    base = rng.normal(size=(h // 40, w // 40, 3)).cumsum(0).cumsum(1)
    base = (base - base.min()) / (np.ptp(base) + 1e-9) * 200 + 20
    im = PILImage.fromarray(base.astype(np.uint8)).resize((w, h), PILImage.BICUBIC)
    if fmt == "JPEG" and exif_orientation is None:
        return jpeg_bytes(im, quality=88)
    buf = io.BytesIO()
    exif = PILImage.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    im.save(buf, fmt, exif=exif.tobytes())
    return buf.getvalue()


def preview_size(sha256: str) -> tuple[int, int] | None:
    data = previews.read(sha256)
    return PILImage.open(io.BytesIO(data)).size if data else None


def test_the_worker_encodes_the_imports_picture_and_not_the_original(redis, settings, monkeypatch):
    settings.OCR_ENABLED = False
    data = photo(4000, 3000)
    image = services.add_image(data, "big.jpg", enqueue=False)
    assert preview_size(image.sha256) == (500, 375)  # the 1/8 DCT scale, as CLIP's own draft decodes it
    expected = get_clip_service().embed_images([data])[0]  # from the original, as before

    def no_original(image):
        raise AssertionError("the original was decoded again")

    monkeypatch.setattr(ingest, "stored_bytes", no_original)
    assert ingest.ingest_pending(redis=redis)["indexed"] == 1
    got = np.frombuffer(Embedding.objects.get(image=image).vector, np.float32)
    assert float(got @ expected) > 0.995  # the same picture, once more through JPEG q92
    assert previews.read(image.sha256) is None  # handled: removed


def test_without_a_readable_preview_the_original_is_encoded(redis, settings):
    settings.OCR_ENABLED = False
    small = services.add_image(photo(640, 480), "small.jpg", enqueue=False)  # decoding it costs a few ms
    elsewhere = services.add_image(photo(2400, 1800), "elsewhere.jpg", enqueue=False)
    damaged = services.add_image(photo(3000, 2000), "damaged.jpg", enqueue=False)
    assert preview_size(small.sha256) is None
    previews.drop([elsewhere.sha256])  # e.g. imported on another host
    previews.save(damaged.sha256, previews.read(damaged.sha256)[:500])  # e.g. a full disk cut it short
    totals = ingest.ingest_pending(redis=redis)
    assert (totals["indexed"], totals["failed"]) == (3, 0)
    expected = get_clip_service().embed_images([photo(3000, 2000)])[0]
    got = np.frombuffer(Embedding.objects.get(image=damaged).vector, np.float32)
    assert float(got @ expected) > 0.9999  # the original itself


def test_a_preview_is_upright_and_no_larger_than_needed(settings):
    turned = services.add_image(photo(2400, 1800, exif_orientation=6), "turned.jpg", enqueue=False)
    assert preview_size(turned.sha256) == (450, 600)  # shown turned: as the thumbnail and CLIP see it
    png = services.add_image(photo(3000, 2000, fmt="PNG"), "screen.png", enqueue=False)  # no draft decode for PNG
    assert preview_size(png.sha256) == (previews.MAX_SIDE, 683)


def test_a_deleted_image_leaves_no_preview(settings):
    image = services.add_image(photo(2400, 1800), "gone.jpg", enqueue=False)
    assert previews.read(image.sha256)
    services.delete_images([image])
    assert previews.read(image.sha256) is None


def test_a_library_original_that_vanished_fails_although_its_preview_is_there(redis, settings, tmp_path):
    settings.OCR_ENABLED = False
    root = tmp_path / "photos"
    root.mkdir()
    (root / "a.jpg").write_bytes(photo(2400, 1800))
    call_command("library", "add", str(root), "--name", "photos", stdout=io.StringIO())
    call_command("library", "scan", "photos", stdout=io.StringIO())
    image = Image.objects.get()
    assert previews.read(image.sha256)  # written by the scan's pool
    (root / "a.jpg").unlink()
    assert ingest.ingest_pending(redis=redis)["failed"] == 1
    image.refresh_from_db()
    assert image.status == "failed" and "cannot be read" in image.failure_reason
    with pytest.raises(OSError):
        originals.check_present(image)
