"""Albums and share links in the admin: listed with their sizes, a manual album's entries editable
inline, a smart album without them, and links revoked by an action (their tokens never shown)."""
import pytest

from embeddings.albums import albums, shares
from embeddings.models import Share

pytestmark = pytest.mark.django_db(transaction=True)


def test_albums_and_shares_in_the_admin(staff_client, indexed_gallery):
    manual = albums.create("Trip")
    albums.add_images(manual, [im.pk for im in indexed_gallery[:3]])
    smart = albums.create("Reds", {"q": "a red shape"})
    _, token = shares.create(manual)
    listing = staff_client.get("/admin/embeddings/album/").content.decode()
    assert "Trip" in listing and "Reds" in listing and "smart" in listing
    manual_page = staff_client.get(f"/admin/embeddings/album/{manual.pk}/change/").content.decode()
    assert "entries-TOTAL_FORMS" in manual_page and f'value="{indexed_gallery[0].pk}"' in manual_page
    assert "entries-TOTAL_FORMS" not in staff_client.get(f"/admin/embeddings/album/{smart.pk}/change/").content.decode()
    shares_page = staff_client.get("/admin/embeddings/share/").content.decode()
    assert "share of Trip" in shares_page or "Trip" in shares_page
    assert token not in shares_page
    resp = staff_client.post("/admin/embeddings/share/", {"action": "revoke", "_selected_action": [Share.objects.get().pk]})
    assert resp.status_code == 302 and shares.find(token) is None
