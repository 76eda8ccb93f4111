"""The keyword side's database work (embeddings.search.keywords): which counts are kept, which are
asked afresh, and how a word's candidates are taken. Rows are made directly: no model is needed."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from embeddings.models import Image
from embeddings.search import keywords

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _no_kept_counts():
    keywords._common.clear()  # another test's rows must not lend their counts
    yield
    keywords._common.clear()


def make_rows(texts: list[str], start: int = 0, camera: str = "") -> None:
    rows = []
    for n, text in enumerate(texts, start=start):
        image = Image(file=f"images/k/{n}.jpg", original_filename=f"IMG_{n:06d}.JPG", sha256=f"{n:064x}", width=8,
                      height=8, format="JPEG", byte_size=1, status=Image.Status.INDEXED, ocr_text=text,
                      camera_make=camera, ocr_status=Image.OcrStatus.DONE)
        image.keywords = keywords.document(image)
        rows.append(image)
    Image.objects.bulk_create(rows)


def test_a_common_words_count_is_kept_and_a_rare_word_is_counted_afresh(monkeypatch):
    monkeypatch.setattr(keywords, "COMMON", 5)
    make_rows(["Main Street"] * 6 + ["Harbour"])
    rows = Image.objects.filter(status=Image.Status.INDEXED)
    first = keywords.match(rows, "street harbour", total=7)
    assert first.words == ["street", "harbour"]
    with CaptureQueriesContext(connection) as asked:
        keywords.match(rows, "street", total=7)
    assert len(asked) == 1  # the candidates only: the common word's count was kept
    with CaptureQueriesContext(connection) as asked:
        keywords.match(rows.filter(camera_make=""), "street", total=7)
    assert len(asked) == 2  # another filter, another count
    make_rows(["Harbour Road"], start=100)
    again = keywords.match(rows, "harbour", total=8)  # a rare word is counted afresh: the new row is in
    assert len(again.scores) == 2


def test_a_rare_word_is_not_crowded_out_by_a_common_one():
    make_rows(["Main Street"] * 60 + ["Zanzibar street market"])
    rows = Image.objects.filter(status=Image.Status.INDEXED)
    found = keywords.match(rows, "street zanzibar", limit=10, total=61)
    zanzibar = Image.objects.get(ocr_text="Zanzibar street market").pk
    assert next(iter(found.scores)) == zanzibar  # both words: best first
    assert len(found.scores) == 10


def test_keyword_candidates_are_taken_unsorted_in_one_statement():
    make_rows(["Main Street"] * 5 + ["Old Town"] * 5)
    rows = Image.objects.filter(status=Image.Status.INDEXED)
    with CaptureQueriesContext(connection) as asked:
        found = keywords.match(rows, "street town", total=10)
    assert len(found.scores) == 10
    assert len(asked) == 2  # the counts, then both words' candidates together
    # Newest first (the model's order) made PostgreSQL fetch and sort every row holding a common word.
    assert all("ORDER BY" not in q["sql"].upper() for q in asked)
