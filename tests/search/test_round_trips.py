"""The database round trips a search makes through the API, counted: each one costs more on
PostgreSQL across a network than in SQLite, and a new text query's budget is milliseconds."""
import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_text_search_makes_four_round_trips(client, indexed_gallery, django_assert_max_num_queries):
    assert client.get("/api/search", {"q": "a red circle"}).status_code == 200  # warm: model, index, background
    # the ids the filters allow, keyword counts, keyword matches, the page's rows; the cutoff's
    # background sample is reused until the index generation moves
    with django_assert_max_num_queries(4):
        assert client.get("/api/search", {"q": "a blue star"}).status_code == 200


def test_a_browse_makes_one_round_trip(client, indexed_gallery, django_assert_max_num_queries):
    client.get("/api/search")
    with django_assert_max_num_queries(1):
        body = client.get("/api/search", {"k": 5}).json()
    assert len(body["results"]) == 5


def test_the_background_sample_is_kept_per_index_generation(indexed_gallery, demo_images, redis,
                                                              django_assert_num_queries):
    from embeddings.index.signal import read_generation
    from embeddings.search import fusion
    from tests.support import upload_and_ingest

    generation = read_generation("demo")
    first = fusion.background("demo", generation)
    assert first.shape[0] == len(indexed_gallery)  # a small gallery's sample is all of it
    with django_assert_num_queries(0):
        assert fusion.background("demo", generation) is first
    upload_and_ingest(demo_images[30:34], redis)  # four more rows, and the generation moves on commit
    with django_assert_num_queries(0):  # asked with the old generation: the kept sample, no round trip
        assert fusion.background("demo", generation) is first
    assert read_generation("demo") != generation
    assert fusion.background("demo", read_generation("demo")).shape[0] == len(indexed_gallery) + 4


def test_keyword_matches_are_scored_from_the_index_without_a_round_trip(client, indexed_gallery,
                                                                        django_assert_num_queries):
    from django.conf import settings

    from embeddings.index.vector_index import get_index
    from embeddings.search import fusion, selectors

    assert client.get("/api/search", {"q": "a red circle"}).status_code == 200  # loads the index
    vector = selectors.query_vector("a blue star")
    index = get_index(settings.MODEL_KEY, len(vector))
    ids = [im.pk for im in indexed_gallery]
    with django_assert_num_queries(0):
        from_index = fusion.cosines_for(vector, ids, index)
    from_rows = fusion.cosines_for(vector, ids)  # no index: the stored vectors, one round trip
    assert set(from_index) == set(from_rows) == set(ids)
    assert all(from_index[i] == pytest.approx(from_rows[i], abs=1e-5) for i in ids)


def test_a_gallery_whose_generation_was_never_counted_is_not_caught_up_on_every_search(
        client, indexed_gallery, redis, settings, django_assert_max_num_queries):
    from embeddings.index.signal import generation_key

    settings.INDEX_REFRESH_SECONDS = 0  # every search looks at the counter
    assert client.get("/api/search", {"q": "a red circle"}).status_code == 200  # warm
    redis.delete(generation_key(settings.MODEL_KEY))  # filled before this Redis started (or it restarted)
    assert client.get("/api/search", {"q": "a green circle"}).status_code == 200  # catches up once, counts from 0
    assert redis.get(generation_key(settings.MODEL_KEY)) is not None
    with django_assert_max_num_queries(4):  # as with a counted generation: no catch-up, the kept sample
        assert client.get("/api/search", {"q": "a blue star"}).status_code == 200


def test_searches_share_one_redis_connection(client, indexed_gallery, redis):
    assert client.get("/api/search", {"q": "a red circle"}).status_code == 200
    before = redis.info("stats")["total_connections_received"]
    for q in ("a blue star", "a green square", "a yellow circle", "a red star", "a blue circle"):
        assert client.get("/api/search", {"q": q}).status_code == 200
    # django_rq opened a connection per call: the rate count and the index generation, each search
    assert redis.info("stats")["total_connections_received"] - before <= 1
