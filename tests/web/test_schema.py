"""The OpenAPI schema is the API's exact contract: it lists every endpoint and its result fields, the
constraints the checks enforce, every status each operation answers, the image types the uploads
take, links from an upload to what can be done with it; the docs page serves; and schemathesis,
with all its checks over every operation in all its phases (examples, coverage, fuzzing, stateful),
finds no failure against the app served as in production (gunicorn, its request-line limit)."""
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from embeddings.web.schemas import MAX_Q
from tests.support import RESULT_FIELDS, ROOT, db_env

pytestmark = pytest.mark.django_db(transaction=True)

OPERATIONS = {"/api/search": {"get"}, "/api/search/image": {"post"}, "/api/images/{image_id}/similar": {"get"},
              "/api/images": {"post"}, "/api/images/{image_id}": {"get", "delete"}, "/api/status": {"get"},
              "/api/model": {"get"}, "/api/encode/text": {"post"}, "/api/encode/image": {"post"},
              "/api/similarity": {"post"}}
# Each operation's answers (the API is public here: reads need no credentials, so no 401 on them).
STATUSES = {
    ("get", "/api/search"): {"200", "400", "422", "429", "503"},
    ("post", "/api/search/image"): {"200", "400", "413", "422", "429", "503"},
    ("get", "/api/images/{image_id}/similar"): {"200", "404", "409", "422", "429", "503"},
    ("post", "/api/images"): {"201", "400", "401", "403", "409", "413", "422", "503"},
    ("get", "/api/images/{image_id}"): {"200", "404", "503"},
    ("delete", "/api/images/{image_id}"): {"204", "401", "403", "404", "503"},
    ("get", "/api/status"): {"200", "503"},
    ("get", "/api/model"): {"200", "503"},
    ("post", "/api/encode/text"): {"200", "400", "413", "422", "503"},
    ("post", "/api/encode/image"): {"200", "400", "413", "422", "503"},
    ("post", "/api/similarity"): {"200", "400", "413", "422", "503"},
}


def test_openapi_and_docs(client):
    resp = client.get("/api/openapi.json")
    assert resp.status_code == 200
    schema = resp.json()
    assert schema["openapi"].startswith("3.")
    paths = schema["paths"]
    for p, methods in OPERATIONS.items():
        assert p in paths, (p, sorted(paths))
        assert methods <= set(paths[p]), (p, set(paths[p]))
    for (method, p), codes in STATUSES.items():
        assert set(paths[p][method]["responses"]) == codes, (method, p, sorted(paths[p][method]["responses"]))
    props = schema["components"]["schemas"]["ResultOut"]["properties"]
    assert RESULT_FIELDS <= set(props)
    for name in ("StatusOut", "ModelOut", "ErrorOut"):  # typed answers, not "anything"
        assert schema["components"]["schemas"][name]["properties"], name
    docs = client.get("/api/docs")
    assert docs.status_code == 200 and b"openapi.json" in docs.content


def test_schema_states_the_checks(client):
    """The constraints a client reads are the ones the server applies."""
    schema = client.get("/api/openapi.json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    q = next(p for p in paths["/api/search"]["get"]["parameters"] if p["name"] == "q")["schema"]
    q = next(s for s in q.get("anyOf", [q]) if s.get("type") == "string")  # optional: a string or absent
    assert (q["minLength"], q["maxLength"], q["pattern"]) == (1, MAX_Q, r"\S")
    multipart = paths["/api/search/image"]["post"]["requestBody"]["content"]["multipart/form-data"]
    assert multipart["schema"]["properties"]["k"]["minimum"] == 1 and multipart["schema"]["properties"]["q"]["maxLength"] == MAX_Q
    for p, field in (("/api/search/image", "file"), ("/api/encode/image", "file"), ("/api/images", "files")):
        encoding = paths[p]["post"]["requestBody"]["content"]["multipart/form-data"]["encoding"][field]
        assert encoding["contentType"] == "image/jpeg, image/png, image/gif, image/webp, image/bmp, image/tiff", p
    upload = paths["/api/images"]["post"]
    files = upload["requestBody"]["content"]["multipart/form-data"]["schema"]["properties"]["files"]
    assert files["minItems"] == 1
    assert set(upload["responses"]["201"]["links"]) == {"GetImage", "SimilarImages", "DeleteImage"}
    assert components["TextIn"]["properties"]["text"]["minLength"] == 1
    assert components["SimilarityIn"]["properties"]["text_embedding"]["items"] == {"type": "number"}


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def live_server_url(tmp_path, indexed_gallery):
    """The app under gunicorn, as `make run` serves it (gunicorn.conf.py included), on this test's
    database and Redis."""
    port = _free_port()
    env = {**db_env(tmp_path), "CLIPSEARCH_SEARCH_RATE": "0"}  # schemathesis sends ~1,000 searches a minute
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "clipsearch.wsgi", "-b", f"127.0.0.1:{port}", "-w", "2",
                             "--timeout", "60"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            try:
                urllib.request.urlopen(f"{url}/api/model", timeout=30).read()
                break
            except OSError:
                time.sleep(0.5)
        assert proc.poll() is None, proc.stdout.read()
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _get(url):
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def test_longest_query_fits_the_served_request_line(live_server_url):
    """MAX_Q characters of 4-byte UTF-8 (12 bytes each, percent-encoded), with every other parameter
    at its longest, fit gunicorn's request line: the answer is the app's, never the server's 414."""
    params = {"q": "🔴" * MAX_Q, "camera": "📷" * 128, "library": "📚" * 100, "k": 200, "offset": 10_000,
              "min_score": "-0.123456789", "sort": "relevance", "cutoff": "none",
              **{f"{w}_{e}": "2024-01-01T00:00:00.000000+05:30" for w in ("uploaded", "taken") for e in ("after", "before")}}
    line = f"GET /api/search?{urllib.parse.urlencode(params)} HTTP/1.1"
    assert len(line) > 4094  # longer than gunicorn's default limit
    assert _get(f"{live_server_url}/api/search?{urllib.parse.urlencode(params)}") == 200
    assert _get(f"{live_server_url}/api/search?{urllib.parse.urlencode({**params, 'q': '🔴' * (MAX_Q + 1)})}") == 422


def test_schemathesis_finds_no_failure(live_server_url, token, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SCHEMATHESIS_HOOKS": "tests.web.schemathesis_hooks"}
    cmd = [sys.executable, "-m", "schemathesis.cli", "--config-file", str(ROOT / "tests/web/schemathesis.toml"), "run",
           f"{live_server_url}/api/openapi.json", "--checks", "all", "--phases", "examples,coverage,fuzzing,stateful",
           "--max-examples", "15", "--seed", "20261129", "--workers", "1", "--max-response-time", "5",
           "--wait-for-schema", "60", "-H", f"Authorization: Bearer {token}"]
    # One worker: with two threads, hypothesis's source reading trips CPython 3.11's ast.parse
    # ("AST constructor recursion depth mismatch"), an error of the tester, not of the API.
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report[-20000:]
    generated = int(re.search(r"(\d+) generated", report).group(1))
    assert generated >= 500, report[-3000:]
    for phase in ("Coverage", "Fuzzing", "Stateful"):
        assert re.search(rf"✅ {phase}", report), (phase, report[-3000:])
