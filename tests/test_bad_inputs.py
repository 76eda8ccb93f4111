"""Every awkward file of spec section 9 through the admin, the API and index_folder: each one
rejected with a clear reason, or stored and encoded right; never a 500."""
import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from embeddings import services
from embeddings.models import Image
from tests.bad_inputs import corpus

pytestmark = [pytest.mark.django_db(transaction=True)]
CORPUS = corpus()
KEEP = {n for n, (_, e) in CORPUS.items() if e == "indexed"}


@pytest.fixture
def staff(client):
    client.force_login(get_user_model().objects.create_user("staff", is_staff=True, is_superuser=True))
    return client


def check_stored_and_encoded(redis):
    services.ingest_pending(redis=redis)
    stored = {im.original_filename: im for im in Image.objects.all()}
    assert len(stored) == len(KEEP)
    for im in stored.values():
        assert im.status == "indexed", (im.original_filename, im.failure_reason)
        assert "/" not in im.original_filename and "\\" not in im.original_filename
        assert im.original_filename not in im.file.name  # stored under a generated name
    rotated = stored["exif-rotated.jpg"]
    assert (rotated.width, rotated.height) == (64, 96)  # shown upright: EXIF applied


def test_admin(staff, redis):
    files = [SimpleUploadedFile(name, data) for name, (data, _) in CORPUS.items()]
    resp = staff.post("/admin/embeddings/image/add/", {"files": files}, follow=True)
    assert resp.status_code == 200
    text = resp.content.decode().lower()
    for name, (_, expected) in CORPUS.items():
        if expected == "rejected":
            assert f"{name}: rejected:".lower() in text, name
    check_stored_and_encoded(redis)


def test_api(client, redis):
    get_user_model().objects.create_user("bot")
    from embeddings.models import ApiToken

    _, key = ApiToken.issue(get_user_model().objects.get())
    for name, (data, expected) in CORPUS.items():
        resp = client.post("/api/images", {"files": [SimpleUploadedFile(name, data)]}, HTTP_AUTHORIZATION=f"Bearer {key}")
        assert resp.status_code < 500, name
        if expected == "rejected":
            assert resp.status_code == 400, (name, resp.content)
            assert resp.json()["error"]["message"]
        else:
            assert resp.status_code == 201, (name, resp.content)
        for path in ("/api/search/image", "/api/encode/image"):
            r = client.post(path, {"file": SimpleUploadedFile(name, data)})
            assert r.status_code == (400 if expected == "rejected" else 200), (path, name, r.content)
    check_stored_and_encoded(redis)
    assert client.get("/").status_code == 200  # still answering


def test_index_folder(redis, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (name, (data, _)) in enumerate(CORPUS.items()):
        safe = name.replace("/", "_")[:200]
        (folder / safe).write_bytes(data)
    call_command("index_folder", str(folder))
    out = capsys.readouterr().out
    rejected = sum(1 for _, e in CORPUS.values() if e == "rejected")
    assert f"skipped 0 duplicates and {rejected} unreadable files" in out
    services.ingest_pending(redis=redis)
    assert Image.objects.filter(status="indexed").count() == len(KEEP)
