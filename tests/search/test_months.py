"""Months of any year ("snow in winter") as taken_at ranges that the index answers: the same photos
as reading each row's month, and no table scan where nothing was dated."""
from datetime import UTC, datetime

import pytest

from embeddings.models import Image
from embeddings.search.request import Filters

pytestmark = pytest.mark.django_db

EDGES = [datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC), datetime(2020, 1, 1, tzinfo=UTC),
         datetime(2020, 2, 29, 12, tzinfo=UTC), datetime(2020, 3, 1, tzinfo=UTC), datetime(2023, 6, 15, 8, tzinfo=UTC),
         datetime(2023, 11, 30, 23, 59, 59, 999999, tzinfo=UTC), datetime(2024, 12, 1, tzinfo=UTC), None]


def rows(taken):
    return Image.objects.bulk_create(
        Image(sha256=f"{n:064x}", width=1, height=1, format="JPEG", byte_size=1, taken_at=t) for n, t in enumerate(taken))


@pytest.mark.parametrize("months", [(12, 1, 2), (1,), (2, 3), (6,), (11,), (12,), (4, 5)])
def test_months_as_ranges_pass_exactly_the_photos_taken_in_them(months):
    rows(EDGES)
    by_range = set(Filters(months=months).apply(Image.objects.all()).values_list("pk", flat=True))
    by_month = set(Image.objects.filter(taken_at__month__in=months).values_list("pk", flat=True))
    assert by_range == by_month


def test_a_library_without_taken_times_has_no_photo_in_any_month(django_assert_max_num_queries):
    rows([None, None])
    with django_assert_max_num_queries(2):  # the two ends of the dated range; the filter itself asks nothing
        assert not Filters(months=(12, 1, 2)).apply(Image.objects.all()).exists()


def test_months_are_answered_by_the_taken_at_index():
    """The month read from each row (EXTRACT) cannot use an index: 66 ms at 100k images where no photo
    matched. Ranges can. (PostgreSQL is told not to scan the table, so a small one answers too.)"""
    from django.db import connection

    from tests.support import query_plan

    rows(EDGES)
    plan = query_plan(Filters(months=(12, 1, 2)).apply(Image.objects.order_by()).values("pk"), "enable_seqscan")
    if connection.vendor == "postgresql":
        assert "Index Scan on embeddings_image_taken_at" in plan, plan  # Bitmap or plain
    else:
        assert "INDEX embeddings_image_taken_at" in plan and "SCAN embeddings_image" not in plan, plan
