"""Share links: every route an anonymous visitor could reach with a token, and what each must not show.
A share shows its album read-only (thumbnails; originals only if the share allows) to anyone, even
with CLIPSEARCH_PUBLIC=false; no other image, no search; revoked, expired or unknown -> 404."""
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from embeddings.models import Share

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shared(client, auth, indexed_gallery):
    album = client.post("/api/albums", {"name": "Trip"}, content_type="application/json", **auth).json()
    inside, outside = indexed_gallery[:3], indexed_gallery[3:]
    client.post(f"/api/albums/{album['id']}/images", {"ids": [im.pk for im in inside]}, content_type="application/json",
                **auth)
    resp = client.post(f"/api/albums/{album['id']}/share", {}, content_type="application/json", **auth)
    assert resp.status_code == 201, resp.content
    return album, resp.json(), inside, outside


def test_the_link_shows_that_album_and_nothing_else(settings, shared):
    album, link, inside, outside = shared
    assert link["url"].endswith(f"/s/{link['token']}/") and len(link["token"]) >= 40 and link["originals"] is False
    assert Share.objects.get().token_hash != link["token"]  # only its hash is kept
    settings.CLIPSEARCH_PUBLIC = False  # a share works for anyone holding it, even on a private install
    visitor = Client()
    page = visitor.get(f"/s/{link['token']}/")
    assert page.status_code == 200
    html = page.content.decode()
    for im in inside:
        assert f"/s/{link['token']}/thumbnails/{im.pk}" in html
    for im in outside:
        assert f"/thumbnails/{im.pk}\"" not in html and f"/images/{im.pk}/" not in html
    assert 'name="q"' not in html and "/media/" not in html and "/api/" not in html  # no search, no other route
    thumb = visitor.get(f"/s/{link['token']}/thumbnails/{inside[0].pk}")
    assert thumb.status_code == 200 and thumb["Content-Type"] == "image/jpeg"
    assert b"".join(thumb.streaming_content)[:2] == b"\xff\xd8"
    assert visitor.get(f"/s/{link['token']}/thumbnails/{outside[0].pk}").status_code == 404
    assert visitor.get(f"/s/{link['token']}/originals/{inside[0].pk}").status_code == 404  # originals not allowed
    # the rest of the app stays closed to the visitor
    assert visitor.get("/").status_code == 302 and visitor.get(f"/images/{inside[0].pk}/").status_code == 302
    # (the API's read rule is fixed when the process starts: tests/web/test_auth.py checks it private)
    assert visitor.get(inside[0].thumbnail.url).status_code == 302


def test_originals_only_when_the_share_allows(client, auth, shared):
    album, _, inside, outside = shared
    link = client.post(f"/api/albums/{album['id']}/share", {"originals": True}, content_type="application/json", **auth).json()
    visitor = Client()
    original = visitor.get(f"/s/{link['token']}/originals/{inside[0].pk}")
    assert original.status_code == 200 and original.content == inside[0].file.open("rb").read()
    assert visitor.get(f"/s/{link['token']}/originals/{outside[0].pk}").status_code == 404


def test_revoked_expired_and_unknown_links_are_404(client, auth, shared):
    album, link, inside, _ = shared
    visitor = Client()
    for route in ("", f"thumbnails/{inside[0].pk}"):
        assert visitor.get(f"/s/{link['token']}/{route}").status_code == 200
    assert client.delete(f"/api/albums/{album['id']}/share", **auth).status_code == 204
    for route in ("", f"thumbnails/{inside[0].pk}", f"originals/{inside[0].pk}"):
        assert visitor.get(f"/s/{link['token']}/{route}").status_code == 404
    soon = datetime.now(UTC) + timedelta(seconds=30)
    later = client.post(f"/api/albums/{album['id']}/share", {"expires_at": soon.isoformat()}, content_type="application/json",
                        **auth).json()
    assert visitor.get(f"/s/{later['token']}/").status_code == 200
    Share.objects.filter(revoked_at__isnull=True).update(expires_at=datetime.now(UTC) - timedelta(seconds=1))
    assert visitor.get(f"/s/{later['token']}/").status_code == 404
    assert visitor.get("/s/not-a-real-token/").status_code == 404
    assert visitor.get("/s/" + "x" * 300 + "/").status_code == 404
    past = client.post(f"/api/albums/{album['id']}/share", {"expires_at": "2001-01-01T00:00:00Z"},
                       content_type="application/json", **auth)
    assert past.status_code == 422
    far = client.post(f"/api/albums/{album['id']}/share", {"expires_at": "9999-12-31T23:00:00-05:00"},
                      content_type="application/json", **auth)
    assert far.status_code == 422 and "out of range" in far.json()["error"]["message"]


def test_a_deleted_album_takes_its_links_with_it(client, auth, shared):
    album, link, _, _ = shared
    client.delete(f"/api/albums/{album['id']}", **auth)
    assert Client().get(f"/s/{link['token']}/").status_code == 404
