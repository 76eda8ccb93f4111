"""The one parser from request parameters to a search (embeddings.search.request), shared by the page
and the API, and the one parse of a query's text (embeddings.search.query.read_query)."""
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from django.http import QueryDict

from embeddings.search.query import BadQuery, read_query
from embeddings.search.request import MAX_K, BadParameter, Filters, SearchRequest, parse


def test_page_form_strings_become_a_search():
    asked = parse(QueryDict("q=+a+dog+&after=2024-01-02&taken_before=2024-02-30&camera=Can%00on&min_score=0.25"
                            "&sort=taken&cutoff=none&offset=48&library=photos"), k=24)
    assert asked == SearchRequest(
        q="a dog", k=24, offset=48, min_score=0.25, sort="taken", cutoff="none",
        filters=Filters(uploaded_after=datetime(2024, 1, 2, tzinfo=UTC), camera="Canon", library="photos"))


def test_the_page_leaves_out_what_it_cannot_read():
    asked = parse(QueryDict("min_score=lots&offset=-5&sort=sideways&cutoff=maybe&taken_after=yesterday&k=9999"))
    assert asked.min_score is None and asked.offset == 0 and asked.sort == "relevance" and asked.cutoff == "auto"
    assert asked.filters == Filters() and asked.k == MAX_K


def test_typed_api_values_are_folded_into_utc():
    plus2 = timezone(timedelta(hours=2))
    asked = parse({"q": "x", "uploaded_after": datetime(2024, 5, 1, 12, tzinfo=plus2),
                   "taken_before": datetime(2024, 5, 1), "taken_after": date(2024, 4, 1)}, strict=True)
    assert asked.filters.uploaded_after == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert asked.filters.taken_before == datetime(2024, 5, 1, tzinfo=UTC)
    assert asked.filters.taken_after == datetime(2024, 4, 1, tzinfo=UTC)


def test_the_api_refuses_a_date_it_cannot_use():
    far = datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))
    with pytest.raises(BadParameter, match="out of range"):
        parse({"taken_after": far}, strict=True)
    assert parse({"taken_after": far}).filters.taken_after is None  # the page drops it


def test_read_query_parses_phrases_and_terms_once():
    query = read_query('"total 42.50" receipt - "draft" + a dog')
    assert query.phrases == ((1, "total 42.50 receipt"), (-1, "draft"), (1, "a dog"))
    assert query.terms.text == "total 42.50 receipt a dog"
    assert query.terms.required == ("total 42.50",) and query.terms.excluded == ("draft",)
    with pytest.raises(BadQuery):
        read_query("   ")
