"""Duplicates end to end on the real database, Redis, worker code and demo model: pictures drawn
like the evaluation set, uploaded and put in a library, indexed by the worker (whose hook finds
the pairs), then reviewed through the API and the command — keep one (uploads deleted, library
files hidden and untouched on disk), "not duplicates" remembered across a full pass and a rescan."""
import hashlib
import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from embeddings.albums import albums
from embeddings.duplicates import review, store
from embeddings.library import libraries
from embeddings.models import DuplicatePair, HiddenImage, Image, ImageHash
from embeddings.pipeline import ingest
from tests.duplicates import evalset
from tests.support import assert_error, upload_and_ingest

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def scenes():
    """Three scenes with their copies (the first with two series shots) and two distractors."""
    items = evalset.generate(originals=3, distractors=2, seed=11)
    return {i.name: i for i in items}


def upload(scenes, names, redis):
    rows = upload_and_ingest([(scenes[n].data, n) for n in names], redis, name=lambda i, meta: f"{meta}.img")
    return dict(zip(names, rows))


def groups(client, auth, tier="same"):
    resp = client.get("/api/duplicates", {"tier": tier}, **auth)
    assert resp.status_code == 200, resp.content[:300]
    return resp.json()


def group_of(found, image_id):
    return next((set(g["images"]) for g in found if image_id in g["images"]), set())


def post(client, body, auth):
    return client.post("/api/duplicates/resolve", body, content_type="application/json", **auth)


def test_the_worker_finds_copies_and_keeping_one_deletes_the_other_uploads(client, auth, scenes, redis):
    names = ["scene-0", "scene-0-jpeg", "scene-0-resize", "scene-0-png_no_exif", "scene-1", "scene-1-crop",
             "distractor-3", "distractor-4"]
    rows = upload(scenes, names, redis)
    assert ImageHash.objects.count() == len(names)  # the hook hashed every indexed image
    found = groups(client, auth)
    assert all(set(g) == {"tier", "best", "images"} and g["tier"] == "same" and g["best"] == g["images"][0] for g in found)
    assert [len(g["images"]) for g in found] == sorted((len(g["images"]) for g in found), reverse=True)
    zero = {rows[n].pk for n in names[:4]}
    assert group_of(found, rows["scene-0"].pk) == zero
    assert group_of(found, rows["scene-1"].pk) == {rows["scene-1"].pk, rows["scene-1-crop"].pk}
    assert not group_of(found, rows["distractor-3"].pk) and not group_of(found, rows["distractor-4"].pk)
    group = next(g for g in found if set(g["images"]) == zero)
    best = Image.objects.get(pk=group["best"])
    assert best.width * best.height == max(rows[n].width * rows[n].height for n in names[:4])  # never the resized copy
    # the dropped original was in an album, and had the taken time the PNG copy lost
    album = albums.create("trip", None, None)
    albums.add_images(album, [rows["scene-0"].pk])
    keep, drop = rows["scene-0-png_no_exif"], [rows[n].pk for n in ("scene-0", "scene-0-jpeg", "scene-0-resize")]
    assert keep.taken_at is None and rows["scene-0"].taken_at is not None
    files = [Path(Image.objects.get(pk=i).file.path) for i in drop]
    done = post(client, {"keep": keep.pk, "drop": drop}, auth)
    assert done.status_code == 200, done.content
    assert done.json() == {"kept": keep.pk, "deleted": drop, "hidden": [], "remembered": 0}
    for i in drop:
        assert_error(client.get(f"/api/images/{i}"), 404)
    assert not any(f.exists() for f in files)  # uploads' files removed
    keep.refresh_from_db()
    assert keep.taken_at == rows["scene-0"].taken_at
    assert album.images.filter(pk=keep.pk).exists()
    assert not group_of(groups(client, auth), keep.pk)
    browse = client.get("/api/search", {"k": 50}).json()["results"]
    assert {r["id"] for r in browse} == {r.pk for r in rows.values()} - set(drop)


def test_not_duplicates_is_remembered_and_bad_decisions_are_4xx(client, auth, scenes, redis):
    rows = upload(scenes, ["scene-2", "scene-2-recolour", "scene-2-exif_rotated"], redis)
    ids = sorted(r.pk for r in rows.values())
    assert group_of(groups(client, auth), ids[0]) == set(ids)
    assert_error(client.get("/api/duplicates"), 401)
    assert_error(client.post("/api/duplicates/resolve", {"not_duplicates": ids}, content_type="application/json"), 401)
    assert_error(client.get("/api/duplicates", {"tier": "bogus"}, **auth), 422)
    for body in ({}, {"keep": ids[0]}, {"drop": ids[1:]}, {"keep": ids[0], "drop": []}, {"not_duplicates": ids[:1]},
                 {"keep": ids[0], "drop": ids[1:], "not_duplicates": ids}, {"keep": "x", "drop": [1]},
                 {"keep": True, "drop": [2]}):
        assert_error(post(client, body, auth), 422)
    assert_error(post(client, {"keep": ids[0], "drop": [ids[0]]}, auth), 422)
    assert_error(post(client, {"keep": ids[0], "drop": [999_999]}, auth), 404)
    assert_error(post(client, {"not_duplicates": [ids[0], 999_999]}, auth), 404)
    assert Image.objects.filter(pk__in=ids).count() == 3  # nothing lost to a refused decision
    said = post(client, {"not_duplicates": ids}, auth)
    assert said.status_code == 200 and said.json()["remembered"] == 3
    assert not group_of(groups(client, auth), ids[0])
    store.full_pass(rehash=True)  # found again by a full pass, still never proposed
    assert DuplicatePair.objects.filter(low_id__in=ids).exists()
    assert not group_of(groups(client, auth), ids[0])


def test_series_shots_are_similar_not_the_same_picture(client, auth, scenes, redis):
    rows = upload(scenes, ["scene-0", "scene-0-series0", "scene-0-series1", "scene-0-jpeg"], redis)
    shots = {rows[n].pk for n in ("scene-0", "scene-0-series0", "scene-0-series1")}
    assert not (group_of(groups(client, auth), rows["scene-0"].pk) & (shots - {rows["scene-0"].pk}))
    assert group_of(groups(client, auth, "similar"), rows["scene-0"].pk) >= shots


def test_the_command_prints_the_apis_list(client, auth, scenes, redis):
    upload(scenes, ["scene-1", "scene-1-jpeg", "scene-1-combined", "distractor-3"], redis)
    out = io.StringIO()
    call_command("duplicates", "--json", stdout=out)
    assert json.loads(out.getvalue()) == groups(client, auth) and len(json.loads(out.getvalue())) == 1
    out = io.StringIO()
    call_command("duplicates", "--tier", "similar", "--full-pass", stdout=out, stderr=io.StringIO())
    assert out.getvalue().startswith("similar (3): #")
    out = io.StringIO()
    call_command("duplicates", "--tier", "exact", stdout=out)
    assert out.getvalue().strip() == "no groups"


def _disk(root: Path) -> dict:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(root.iterdir())}


def test_library_files_are_hidden_never_touched_and_decisions_survive_a_rescan(client, auth, scenes, redis, tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    for n in ("scene-0-jpeg", "scene-1", "scene-1-resize", "scene-2"):
        (root / f"{n}.jpg").write_bytes(scenes[n].data)
    (root / "scene-2-copy.jpg").write_bytes(scenes["scene-2"].data)  # the same bytes twice: the exact tier
    before = _disk(root)
    library = libraries.add_library(str(root), "photos")
    libraries.run_scan(library)
    ingest.ingest_pending(redis=redis)
    uploaded = upload(scenes, ["scene-0"], redis)["scene-0"]
    at = {im.path: im.pk for im in Image.objects.filter(library=library)}
    copy = at["scene-0-jpeg.jpg"]
    assert group_of(groups(client, auth), uploaded.pk) == {uploaded.pk, copy}
    pair = {at["scene-1.jpg"], at["scene-1-resize.jpg"]}
    assert group_of(groups(client, auth), at["scene-1.jpg"]) == pair
    out = io.StringIO()
    call_command("duplicates", "--tier", "exact", stdout=out)
    assert "photos:scene-2" in out.getvalue() and f"#{at.get('scene-2.jpg', at.get('scene-2-copy.jpg'))}" in out.getvalue()
    # keep the upload: the library file is hidden, its row kept, the file as it was
    done = post(client, {"keep": uploaded.pk, "drop": [copy]}, auth).json()
    assert done["hidden"] == [copy] and done["deleted"] == []
    assert post(client, {"not_duplicates": sorted(pair)}, auth).status_code == 200
    assert Image.objects.filter(pk=copy).exists() and HiddenImage.objects.filter(pk=copy).exists()
    assert copy not in {r["id"] for r in client.get("/api/search", {"k": 50}).json()["results"]}
    ranked = client.get("/api/search", {"q": "a picture", "cutoff": "none", "k": 50}).json()["results"]
    assert ranked and copy not in {r["id"] for r in ranked}
    assert copy not in {r["id"] for r in client.get(f"/api/images/{uploaded.pk}/similar", {"k": 50}).json()["results"]}
    assert {"id": copy, "library": "photos", "path": "scene-0-jpeg.jpg", "kept": uploaded.pk} in review.hidden()
    # a rescan (one file moved, one touched): the hidden row stays hidden, "not duplicates" stays said
    (root / "scene-0-jpeg.jpg").rename(root / "moved.jpg")
    libraries.run_scan(library)
    ingest.ingest_pending(redis=redis)
    assert Image.objects.get(pk=copy).path == "moved.jpg" and HiddenImage.objects.filter(pk=copy).exists()
    assert copy not in {r["id"] for r in client.get("/api/search", {"k": 50}).json()["results"]}
    store.full_pass(rehash=True)
    assert not group_of(groups(client, auth), at["scene-1.jpg"]) and not group_of(groups(client, auth), copy)
    after = _disk(root)
    before["moved.jpg"] = before.pop("scene-0-jpeg.jpg")
    assert after == before  # nothing written or deleted in the library but the move made here
