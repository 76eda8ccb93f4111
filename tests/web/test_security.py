"""Deployment promises: media served with the checked type and nosniff, the Redis-backed search
rate limit."""
import pytest

from embeddings import services
from embeddings.pipeline import ingest
from tests.bad_inputs import corpus

pytestmark = pytest.mark.django_db(transaction=True)


def test_media_served_with_checked_type_and_nosniff(client, redis):
    data = corpus()["rgba.png"][0]
    im = services.add_image(data, "innocent.jpg", enqueue=False)  # a PNG named .jpg
    resp = client.get(im.file.url)
    assert resp.status_code == 200
    assert resp["Content-Type"] == "image/png"  # the format we checked, not the name given
    assert resp["X-Content-Type-Options"] == "nosniff"
    assert b"".join(resp.streaming_content) == data
    assert client.get("/media/../secret_key").status_code == 404
    assert client.get("/media/images/none.png").status_code == 404


def test_search_rate_limit_counts_in_redis(client, redis, settings, demo_images):
    settings.SEARCH_RATE_PER_MINUTE = 3
    services.add_image(demo_images[0][0], "a.jpg", enqueue=False)
    ingest.ingest_pending(redis=redis)
    codes = [client.get("/api/search", {"q": "a red circle"}).status_code for _ in range(5)]
    assert codes == [200, 200, 200, 429, 429]
    resp = client.get("/api/search", {"q": "a red circle"})
    assert resp.json()["error"]["code"] == "rate_limited" and resp["Retry-After"] == "60"
    assert any(k.startswith(b"clipsearch:rate:") for k in redis.keys())
