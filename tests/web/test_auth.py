"""Who may do what: writes (upload, delete) need an API token or a logged-in staff user; the
`create_api_token` command; private mode (CLIPSEARCH_PUBLIC=false), where reading needs them too."""
import io
import json
import subprocess
import sys
import textwrap

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client

from embeddings.models import Image
from tests.support import ROOT, assert_error, db_env, make_token

pytestmark = pytest.mark.django_db(transaction=True)


def test_writes_need_a_token_or_staff(client, redis, demo_images, indexed_gallery):
    data = demo_images[40][0]
    assert_error(client.post("/api/images", {"files": [SimpleUploadedFile("a.jpg", data)]}), 401, "unauthorized")
    assert_error(client.delete(f"/api/images/{indexed_gallery[0].pk}"), 401, "unauthorized")
    for bad in ("Bearer nonsense", "Bearer ", "Token abc", "Bearer " + "x" * 5000, "Basic dXNlcjpwdw=="):
        resp = client.post("/api/images", {"files": [SimpleUploadedFile("a.jpg", data)]}, HTTP_AUTHORIZATION=bad)
        assert_error(resp, 401, "unauthorized")
        assert_error(client.delete(f"/api/images/{indexed_gallery[0].pk}", HTTP_AUTHORIZATION=bad), 401)
    assert Image.objects.count() == len(indexed_gallery)
    # A logged-in user who is not staff cannot write either.
    plain = get_user_model().objects.create_user("plain", password="pw")
    client.force_login(plain)
    assert_error(client.post("/api/images", {"files": [SimpleUploadedFile("a.jpg", data)]}), 401)
    # A token of that user works, and its use is recorded; an inactive user's token does not.
    key = make_token("plain")
    c = Client()
    resp = c.post("/api/images", {"files": [SimpleUploadedFile("a.jpg", data)]}, HTTP_AUTHORIZATION=f"Bearer {key}")
    assert resp.status_code == 201, resp.content
    assert plain.api_tokens.get().last_used_at is not None
    plain.is_active = False
    plain.save()
    assert_error(c.delete(f"/api/images/{indexed_gallery[0].pk}", HTTP_AUTHORIZATION=f"Bearer {key}"), 401)


def test_create_api_token_command(staff_user):
    """It prints the new token on its last line; the token is the user's; each run makes a new one;
    an unknown user is an error."""
    from django.core.management.base import CommandError

    from embeddings.models import ApiToken

    key = make_token(staff_user.username)
    assert len(key) >= 20 and " " not in key
    assert ApiToken.objects.get(key_hash=ApiToken.hash(key)).user == staff_user
    assert make_token(staff_user.username) != key
    assert staff_user.api_tokens.count() == 2
    with pytest.raises(CommandError):
        call_command("create_api_token", "nobody", stdout=io.StringIO(), stderr=io.StringIO())


PRIVATE_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import django
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clipsearch.settings")
    django.setup()
    from django.conf import settings
    from django.test import Client
    assert settings.CLIPSEARCH_PUBLIC is False
    c = Client(HTTP_HOST="localhost")
    out = {
        "anon_search": c.get("/api/search", {"q": "a red circle"}).status_code,
        "anon_search_body": c.get("/api/search", {"q": "a red circle"}).json(),
        "anon_status": c.get("/api/status").status_code,
        "anon_image": c.get("/api/images/1").status_code,
        "anon_page": c.get("/").status_code,
        "bad_token": c.get("/api/search", {"q": "a red circle"}, HTTP_AUTHORIZATION="Bearer wrong").status_code,
    }
    r = c.get("/api/search", {"q": "a red circle", "k": 3, "cutoff": "none"}, HTTP_AUTHORIZATION="Bearer " + sys.argv[1])
    out["token_search"] = r.status_code
    out["token_results"] = len(r.json().get("results", []))
    out["token_status"] = c.get("/api/status", HTTP_AUTHORIZATION="Bearer " + sys.argv[1]).status_code
    print("RESULT " + json.dumps(out))
""")


def test_private_mode_needs_login_or_token(indexed_gallery, token, tmp_path):
    env = db_env(tmp_path)
    env["CLIPSEARCH_PUBLIC"] = "false"
    proc = subprocess.run([sys.executable, "-c", PRIVATE_SCRIPT, token], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    out = json.loads(line[len("RESULT "):])
    assert out["anon_search"] == 401 and out["anon_status"] == 401 and out["anon_image"] == 401, out
    assert out["anon_search_body"]["error"]["code"] == "unauthorized"
    assert out["bad_token"] == 401
    assert out["anon_page"] == 302  # the browser pages send to the login
    assert out["token_search"] == 200 and out["token_results"] == 3 and out["token_status"] == 200, out
