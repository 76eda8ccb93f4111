"""The library's cameras as searches know them (embeddings.search.answer.known_cameras): every
photo's camera, not only the newest rows', and a new photo's camera soon after it arrives."""
import pytest

from embeddings.models import Image
from embeddings.search import answer

pytestmark = pytest.mark.django_db


def make(n: int, start: int, make: str, model: str) -> None:
    Image.objects.bulk_create(
        Image(file=f"images/c/{i}.jpg", original_filename=f"IMG_{i:06d}.JPG", sha256=f"{i:064x}", width=8, height=8,
              format="JPEG", byte_size=1, status=Image.Status.INDEXED, camera_make=make, camera_model=model)
        for i in range(start, start + n))


def test_an_old_photos_camera_is_known_behind_many_newer_ones():
    make(1, 0, "Canon", "EOS 5D")
    make(600, 1, "FUJIFILM", "X-T30")  # newer: the newest 500 rows alone would not hold the Canon
    make(3, 601, "", "")
    assert answer.known_cameras() == ["Canon EOS 5D", "FUJIFILM X-T30"]


def test_a_new_photos_camera_is_added_from_the_new_rows_only(monkeypatch, django_assert_num_queries):
    make(2, 0, "Canon", "EOS 5D")
    assert answer.known_cameras() == ["Canon EOS 5D"]
    make(1, 2, "SONY", "ILCE-7M3")
    assert answer.known_cameras() == ["Canon EOS 5D"]  # checked a moment ago: kept
    monkeypatch.setattr(answer, "CAMERAS_CHECK_S", 0)
    with django_assert_num_queries(2) as asked:  # the newest id, then the rows past the last one seen
        assert answer.known_cameras() == ["Canon EOS 5D", "SONY ILCE-7M3"]
    assert '"id" >' in asked.captured_queries[1]["sql"]
    Image.objects.filter(camera_make="SONY").delete()
    monkeypatch.setattr(answer, "CAMERAS_FULL_S", 0)  # a full read drops a camera no photo has any more
    assert answer.known_cameras() == ["Canon EOS 5D"]
