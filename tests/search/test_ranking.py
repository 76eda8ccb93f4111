"""Pure rules of hybrid search: keyword normalisation, quoted phrases, fusion and the cutoff."""
from types import SimpleNamespace

import numpy as np
import pytest

from embeddings.search import keywords, ranking
from embeddings.search.query import QueryTerms, keyword_terms, parse_query


def image(**kw):
    fields = {"original_filename": "", "path": "", "camera_make": "", "camera_model": "", "ocr_text": None}
    return SimpleNamespace(**(fields | kw))


def test_normalise_folds_case_accents_and_space():
    assert keywords.normalise("  Café\tROMA  Ärger ") == "cafe roma arger"
    assert keywords.normalise(None) == ""


def test_document_holds_text_name_path_and_camera():
    doc = keywords.document(image(original_filename="Colosseum_2019.JPG", path="2019/Rome/x.jpg",
                                  camera_make="Canon", camera_model="EOS R6", ocr_text="Total 42.50 EUR"))
    for needle in ("colosseum_2019.jpg", "colosseum 2019", "2019/rome", "rome x jpg", "canon eos r6", "total 42.50 eur"):
        assert needle in doc, needle


def test_words_leave_out_stopwords_and_short_words():
    assert keywords.words("A photo of the Colosseum, in 2019!") == ["colosseum", "2019"]
    assert keywords.words("42.50 «EUR»") == ["42.50", "eur"]
    assert keywords.words("a an of") == []


def test_quoted_phrases_are_required_or_excluded_and_the_model_reads_the_words():
    terms = keyword_terms('"Total 42.50" receipt - "draft copy" + a cat')
    assert terms == QueryTerms("Total 42.50 receipt a cat", ("Total 42.50",), ("draft copy",))
    assert parse_query('"Total 42.50" receipt - "draft copy"') == [(1, "Total 42.50 receipt"), (-1, "draft copy")]
    assert keyword_terms("plain words").required == ()


def test_phrase_ok_ignores_the_spaces_ocr_drops():
    doc = keywords.document(image(ocr_text="CAFE ROMA\nTotal42.50EUR"))
    assert keywords.phrase_ok(doc, keyword_terms('"total 42.50"'))
    assert keywords.phrase_ok(doc, keyword_terms('"café roma"'))
    assert not keywords.phrase_ok(doc, keyword_terms('"total 17.80"'))
    assert not keywords.phrase_ok(doc, keyword_terms('receipt - "roma"'))


def test_why_names_the_fields_that_matched():
    im = image(original_filename="trevi-fountain.png", ocr_text="Fontana di Trevi")
    assert keywords.why(im, ["trevi"]) == ["text", "name"]
    assert keywords.why(im, ["fontana"]) == ["text"]
    assert keywords.why(im, ["fountain"]) == ["name"]


@pytest.mark.parametrize("a,b", [(1.0, 0.0), (0.1, 0.05), (3.0, -0.4)])
def test_cutoff_does_not_depend_on_the_models_score_range(a, b):
    rng = np.random.default_rng(0)
    scores = np.sort(np.concatenate([rng.normal(0.8, 0.03, 10), rng.normal(0.2, 0.1, 200)]))[::-1]
    background = rng.normal(0.2, 0.1, 256)
    base = ranking.scale(scores, background)
    moved = ranking.scale(scores * a + b, background * a + b)
    passed = (scores >= ranking.meaning_threshold(base)).sum()
    assert (scores * a + b >= ranking.meaning_threshold(moved)).sum() == passed
    assert 8 <= passed <= 12  # the ten that stand out, give or take the noise


def test_nothing_passes_on_meaning_when_nothing_stands_out():
    s = ranking.scale([0.2, 0.19, 0.18], np.full(100, 0.25))
    assert ranking.meaning_threshold(s) == float("inf")
    assert ranking.passes(0.2, 1.0, ranking.meaning_threshold(s))  # every word in its text still passes
    assert not ranking.passes(0.2, 0.5, ranking.meaning_threshold(s))


def test_calibrated_sum_lifts_full_keyword_matches_past_any_meaning_match():
    cos = {1: 0.31, 2: 0.30, 3: 0.05, 4: 0.02, 5: 0.10}
    kw = {3: 1.0, 4: 1.0, 5: 0.5}
    s = ranking.scale(cos.values(), np.full(50, 0.15))
    order = ranking.order(ranking.fuse_sum(cos, kw, s))
    assert order[:2] == [3, 4]  # every word: first, ordered among themselves by meaning
    assert order.index(5) > order.index(4) and set(order[2:]) == {1, 2, 5}
    assert ranking.order(ranking.fuse_sum(cos, {}, s)) == [1, 2, 5, 3, 4]  # no keywords: pure meaning


def test_rrf_counts_ranks_on_both_sides():
    fused = ranking.fuse_rrf({1: 0.9, 2: 0.5, 3: 0.1}, {3: 1.0})
    assert ranking.order(fused) == [3, 1, 2]
    assert ranking.order({7: 0.5, 3: 0.5}) == [3, 7]  # ties by id: pages never shuffle
