"""Bad input through the JSON API: empty, void, over-long or odd queries, bad parameters, unknown
ids, awkward files (tests/bad_inputs.py), missing files, malformed bodies. Each is a clear 4xx
in the error envelope, or (odd but valid) a normal answer; never a 500."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from embeddings.models import Image
from embeddings.pipeline import ingest
from embeddings.web.schemas import MAX_Q
from tests.bad_inputs import corpus
from tests.support import assert_error, assert_result_list

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize("q", ["", " ", "   \t\n  ", "\u3000", "a cat - a cat", "a cat + a dog - a cat - a dog",
                               " - a cat"])  # only a phrase to avoid
def test_empty_or_void_queries_are_4xx(client, indexed_gallery, q):
    assert_error(client.get("/api/search", {"q": q}))


@pytest.mark.parametrize("q", ["a red circle " * 23 + "a",  # exactly MAX_Q (300) characters
                               "x" * MAX_Q, "й" * MAX_Q, "红" * MAX_Q, "красный круг", "赤い丸", "🔴⭕", "a\u0000b",
                               "<script>alert(1)</script>",
                               "a dog - a cat + a red circle", " + ", "%00%ff", "'; DROP TABLE embeddings_image; --"])
def test_odd_but_valid_queries_answer(client, indexed_gallery, q):
    assert len(q) <= MAX_Q
    resp = client.get("/api/search", {"q": q, "k": 3, "cutoff": "none"})
    assert resp.status_code == 200, resp.content[:300]
    body = resp.json()
    assert body["query"] == q and len(assert_result_list(body)) == 3
    # With the default relevance cutoff it still answers: at least the best result, and says how many passed.
    body = client.get("/api/search", {"q": q, "k": 3}).json()
    assert 1 <= len(assert_result_list(body)) <= 3 and body["passed"] >= len(body["results"])


@pytest.mark.parametrize("n", [MAX_Q + 1, 10_000])
def test_over_long_query_is_4xx(client, indexed_gallery, n):
    error = assert_error(client.get("/api/search", {"q": "x" * n}), 422, "invalid")
    assert f"at most {MAX_Q} characters" in error["message"], error


@pytest.mark.parametrize("params", [{"k": 0}, {"k": -1}, {"k": 10**9}, {"k": "abc"}, {"k": ""}, {"k": "1.5"},
                                    {"k": 2**70}, {"offset": -1}, {"offset": "abc"}, {"offset": 10**9},
                                    {"min_score": "abc"}, {"min_score": 2}, {"min_score": "nan"},
                                    {"uploaded_after": "yesterday"}, {"uploaded_before": "2024-13-45"}])
def test_bad_search_parameters_are_4xx(client, indexed_gallery, params):
    assert_error(client.get("/api/search", {"q": "a red circle", **params}))


@pytest.mark.parametrize("k", ["0", "-1", str(10**9), "abc"])
def test_bad_k_elsewhere_is_4xx(client, indexed_gallery, demo_images, k):
    assert_error(client.get(f"/api/images/{indexed_gallery[0].pk}/similar", {"k": k}))
    resp = client.post("/api/search/image", {"file": SimpleUploadedFile("a.jpg", demo_images[0][0]), "k": k})
    assert_error(resp)


@pytest.mark.parametrize("image_id", ["0", "999999", str(2**70), "-1"])
@pytest.mark.parametrize("how", ["get", "similar", "delete"])
def test_unknown_ids_are_404(client, indexed_gallery, auth, image_id, how):
    if how == "get":
        resp = client.get(f"/api/images/{image_id}")
    elif how == "similar":
        resp = client.get(f"/api/images/{image_id}/similar")
    else:
        resp = client.delete(f"/api/images/{image_id}", **auth)
    if image_id == "-1" and resp.status_code != 404:  # not even an id: no route, or a validation error
        assert resp.status_code in (404, 422), resp.status_code
        return
    assert_error(resp, 404, "not_found")
    assert Image.objects.count() == len(indexed_gallery)


CORPUS = corpus()


@pytest.mark.parametrize("name", list(CORPUS))
def test_awkward_files_through_the_api(client, redis, auth, name):
    """Upload, search by image (alone and with text) and image encoding: a file that is not an image
    we take is a 400 with a reason on each, and nothing is stored; an odd but valid one is stored
    under a generated name and encoded (EXIF-rotated sizes stored upright). Never a 500."""
    data, expected = CORPUS[name]
    upload = client.post("/api/images", {"files": [SimpleUploadedFile(name, data)]}, **auth)
    uses = {"search by image": client.post("/api/search/image", {"file": SimpleUploadedFile(name, data)}),
            "search by image and text": client.post("/api/search/image", {"file": SimpleUploadedFile(name, data),
                                                                          "q": "a red circle"}),
            "encode image": client.post("/api/encode/image", {"file": SimpleUploadedFile(name, data)})}
    if expected == "rejected":
        assert_error(upload, 400)
        assert Image.objects.count() == 0  # nothing half-written
        for use, resp in uses.items():
            assert resp.status_code == 400, (use, resp.content)
            assert_error(resp)
    else:
        assert upload.status_code == 201, upload.content
        for use, resp in uses.items():
            assert resp.status_code == 200, (use, resp.content)
        ingest.ingest_pending(redis=redis)
        im = Image.objects.get()
        assert im.status == "indexed", im.failure_reason
        assert "/" not in im.original_filename and "\\" not in im.original_filename
        assert im.original_filename not in im.file.name  # stored under a generated name
        if name == "exif-rotated.jpg":
            assert (im.width, im.height) == (64, 96)  # shown upright: EXIF applied
    assert client.get("/").status_code == 200  # still answering


def test_one_bad_file_among_good_ones(client, redis, auth, demo_images):
    files = [SimpleUploadedFile("good.jpg", demo_images[0][0]), SimpleUploadedFile("text.jpg", CORPUS["text.jpg"][0])]
    resp = client.post("/api/images", {"files": files}, **auth)
    assert resp.status_code == 201, resp.content
    body = resp.json()
    assert [i["original_filename"] for i in body["images"]] == ["good.jpg"]
    assert [r["original_filename"] for r in body["rejected"]] == ["text.jpg"] and body["rejected"][0]["reason"]
    assert Image.objects.count() == 1


def test_uploads_without_files_are_4xx(client, redis, auth):
    assert_error(client.post("/api/images", {}, **auth))
    assert_error(client.post("/api/search/image", {"q": "a red circle"}))
    assert_error(client.post("/api/encode/image", {}))


@pytest.mark.parametrize("body", [
    {"text_embedding": [1, 2, 3], "image_embedding": [1, 2]},
    {"text_embedding": [], "image_embedding": []},
    {"text_embedding": ["a"], "image_embedding": [1]},
    {"text_embedding": [1, 2]},
    {"text_embedding": [1.0] * 5000, "image_embedding": [1.0] * 5000},
    {},
])
def test_bad_similarity_bodies_are_4xx(client, body):
    assert_error(client.post("/api/similarity", body, content_type="application/json"))


@pytest.mark.parametrize("a, b, expected", [
    ([0, 0, 0], [1, 2, 3], 0.0),  # a zero vector has no direction: similar to nothing
    ([1, 2, 3], [0.0, 0.0, 0.0], 0.0),
    ([1e38, 1e38], [1e38, 1e38], 1.0),  # norms that overflow float32 are scaled first, not a 500 or NaN
    ([1e39], [1.0], 1.0),
    ([1e-30, 0], [0, 1e-30], 0.0),
])
def test_similarity_edge_values_answer_exactly(client, a, b, expected):
    resp = client.post("/api/similarity", {"text_embedding": a, "image_embedding": b}, content_type="application/json")
    assert resp.status_code == 200, resp.content
    assert abs(resp.json()["similarity"] - expected) < 1e-9


@pytest.mark.parametrize("body", [{"text": ""}, {"text": "   "}, {"text": "x" * 10_001}, {}, {"text": None}])
def test_bad_encode_text_bodies_are_4xx(client, body):
    assert_error(client.post("/api/encode/text", body, content_type="application/json"))


@pytest.mark.parametrize("path", ["/api/encode/text", "/api/similarity"])
def test_malformed_json_is_4xx(client, path):
    assert_error(client.post(path, "{not json", content_type="application/json"))
