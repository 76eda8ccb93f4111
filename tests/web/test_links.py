"""How a search travels in links (embeddings.web.links): defaults stay out, pages around the current
one, the count's wording, and how many filters are on."""
from types import SimpleNamespace

from embeddings.web import links


def page(hits=24, has_more=True, passed=None):
    return SimpleNamespace(hits=[None] * hits, has_more=has_more, passed=passed)


def test_state_keeps_what_was_asked_and_leaves_out_defaults_and_blanks():
    state = links.state({"q": "a dog", "sort": "relevance", "cutoff": "auto", "camera": "", "library": "photos",
                         "offset": 48, "unrelated": "x"})
    assert dict(state.items()) == {"q": "a dog", "library": "photos"}
    assert links.link(state, offset=24) == "?q=a+dog&library=photos&offset=24"


def test_pages_around_the_current_one_with_gaps():
    state = links.state({"q": "x"})
    numbers = [(p["n"], p["current"], p["gap"]) for p in links.pages(state, 5 * 24, page(passed=240), 24)]
    assert numbers == [(1, False, False), (4, False, True), (5, False, False), (6, True, False), (7, False, False),
                       (8, False, False), (10, False, True)]


def test_pages_when_the_end_is_not_known_yet():
    assert [p["n"] for p in links.pages(links.state({}), 0, page(has_more=True), 24)] == [1, 2]
    assert [p["n"] for p in links.pages(links.state({}), 0, page(has_more=False), 24)] == [1]


def test_count_says_exact_plus_or_relevant():
    assert links.count(page(passed=7), 0) == {"n": 7, "plus": False, "relevant": True}
    assert links.count(page(hits=24, has_more=True), 24) == {"n": 48, "plus": True, "relevant": False}
    assert links.count(page(hits=3, has_more=False), 0) == {"n": 3, "plus": False, "relevant": False}


def test_active_filters_counts_only_non_defaults():
    assert links.active_filters({"camera": "canon", "sort": "relevance", "cutoff": "none", "min_score": ""}) == 2
