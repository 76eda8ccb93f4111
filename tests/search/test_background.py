"""The cutoff's background sample (embeddings.search.fusion.background) is drawn again only once
the gallery has grown by a step, not on every ingested batch: a new draw took 14 ms of a search."""
import numpy as np
import pytest

from embeddings.models import Embedding, Image
from embeddings.search import fusion

pytestmark = pytest.mark.django_db
KEY = "background-test"


def add_rows(n: int, start: int) -> None:
    images = Image.objects.bulk_create(
        Image(file=f"images/b/{i}.jpg", original_filename=f"b{i}.jpg", sha256=f"{i:064x}", width=8, height=8,
              format="JPEG", byte_size=1, status=Image.Status.INDEXED) for i in range(start, start + n))
    rng = np.random.default_rng(start)
    Embedding.objects.bulk_create(Embedding(image=im, model_name=KEY, vector=rng.standard_normal(4, np.float32).tobytes())
                                  for im in images)


@pytest.fixture(autouse=True)
def _no_kept_sample():
    fusion._cache.pop(KEY, None)
    yield
    fusion._cache.pop(KEY, None)


def ids() -> tuple[int, int]:
    mine = Embedding.objects.filter(model_name=KEY).order_by("id").values_list("id", flat=True)
    return mine.first(), mine.last()


def grow_past_a_step(start: int) -> int:
    """Add rows 20 at a time until the sampled range moves (ids differ by database): just past a step."""
    upto = fusion._sampled_up_to(*ids())
    while fusion._sampled_up_to(*ids()) == upto:
        add_rows(20, start)
        start += 20
    return start


def test_a_few_new_rows_keep_the_sample_and_a_grown_gallery_draws_anew(django_assert_num_queries):
    add_rows(1500, 0)
    n = grow_past_a_step(1500)
    first = fusion.background(KEY)
    assert first.shape == (fusion.BACKGROUND_SIZE, 4)
    add_rows(10, n)  # a batch or so (a step is 64 ids or more here): the newest id moved, the sample stays
    with django_assert_num_queries(2):  # the oldest and newest ids only
        assert fusion.background(KEY) is first
    grow_past_a_step(n + 10)  # past a sixteenth of the gallery: a new sample
    again = fusion.background(KEY)
    assert again is not first and again.shape == first.shape


def test_a_small_gallerys_sample_is_all_of_it_and_follows_every_row():
    add_rows(300, 0)
    assert fusion.background(KEY).shape[0] == 256  # the first BACKGROUND_SIZE of all 300
    fusion._cache.pop(KEY)
    oldest = list(Embedding.objects.filter(model_name=KEY).order_by("id").values_list("id", flat=True)[:100])
    Embedding.objects.filter(id__in=oldest).delete()
    assert fusion.background(KEY).shape[0] == 200
