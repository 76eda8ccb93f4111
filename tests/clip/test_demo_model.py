"""Ranking quality of the bundled demo CLIP model (demo/model): precision@5 of "a {colour} {shape}"
and "a {size} {shape}" queries, random ranking being 1/48 = 0.02 for colour x shape.

Two ways in: plain transformers (the code path used for openai/clip-vit-base-patch32) on fresh
galleries drawn by an independent drawer (tests/clip/drawing_other.py) and by demo/synth.py at a
seed the training never used; and the whole app (upload, ingest, index, `/api/search`).
"""
from __future__ import annotations

import pytest
import torch
from transformers import CLIPImageProcessor, CLIPModel, CLIPTokenizer, CLIPTokenizerFast

from demo import synth
from demo.metrics import precision_at_k, relevant_ids
from embeddings.clip.config import DEMO_MODEL_DIR
from embeddings.search import selectors
from tests.clip import drawing_other
from tests.support import jpeg_bytes, upload_and_ingest

COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "black", "white")
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
SIZES = ("small", "large")
# The bars. Measured with the bundled model: colour x shape 0.983 (drawing_other), 0.988 (synth)
# and 0.975 through the API.
MIN_COLOUR_SHAPE = 0.85
MIN_SIZE_SHAPE = 0.70

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    torch.set_num_threads(max(1, min(4, torch.get_num_threads())))
    model = CLIPModel.from_pretrained(DEMO_MODEL_DIR).eval()
    tok = CLIPTokenizerFast.from_pretrained(DEMO_MODEL_DIR)
    proc = CLIPImageProcessor.from_pretrained(DEMO_MODEL_DIR)
    return model, tok, proc


def _tensor(out):
    return out if isinstance(out, torch.Tensor) else out.pooler_output


@torch.no_grad()
def _image_embeddings(demo, images):
    model, _, proc = demo
    chunks = []
    for i in range(0, len(images), 128):
        pix = proc(images=images[i : i + 128], return_tensors="pt")["pixel_values"]
        chunks.append(_tensor(model.get_image_features(pixel_values=pix)))
    return torch.nn.functional.normalize(torch.cat(chunks), dim=-1)


@torch.no_grad()
def _text_embeddings(demo, texts):
    model, tok, _ = demo
    t = tok(texts, padding=True, truncation=True, return_tensors="pt")
    return torch.nn.functional.normalize(_tensor(model.get_text_features(**t)), dim=-1)


def _precision_at_5(demo, attrs, img_emb, queries, keys):
    """precision@5 of the queries "a {a} {b}" (relevant: images whose `keys` are (a, b)), and per query."""
    texts = [f"a {a} {b}" for a, b in queries]
    top = (_text_embeddings(demo, texts) @ img_emb.T).topk(5, dim=1).indices.tolist()
    relevant = [relevant_ids(attrs, **{keys[0]: a, keys[1]: b}) for a, b in queries]
    per_query = {text: precision_at_k([row], [rel], 5) for text, row, rel in zip(texts, top, relevant)}
    return precision_at_k(top, relevant, 5), per_query


def _check(demo, gallery, label, min_cs=MIN_COLOUR_SHAPE, min_zs=MIN_SIZE_SHAPE):
    images = [im for im, _ in gallery]
    attrs = [a for _, a in gallery]
    counts = {(a["colour"], a["shape"], a["size"]) for a in attrs}
    assert len(counts) == len(COLOURS) * len(SHAPES) * len(SIZES), "gallery not balanced"
    emb = _image_embeddings(demo, images)
    cs_mean, cs = _precision_at_5(demo, attrs, emb, [(c, s) for c in COLOURS for s in SHAPES], ("colour", "shape"))
    zs_mean, zs = _precision_at_5(demo, attrs, emb, [(z, s) for z in SIZES for s in SHAPES], ("size", "shape"))
    worst = sorted(cs.items(), key=lambda kv: kv[1])[:5]
    print(f"{label}: colour x shape P@5 {cs_mean:.3f} (worst {worst}); size x shape P@5 {zs_mean:.3f}")
    assert cs_mean >= min_cs, f"{label}: colour x shape precision@5 {cs_mean:.3f}; worst {worst}"
    assert zs_mean >= min_zs, f"{label}: size x shape precision@5 {zs_mean:.3f}; {zs}"


def test_demo_model_files_are_small_and_standard():
    names = {p.name for p in DEMO_MODEL_DIR.iterdir()}
    for required in ("config.json", "model.safetensors", "preprocessor_config.json", "vocab.json", "merges.txt"):
        assert required in names, required
    total = sum(p.stat().st_size for p in DEMO_MODEL_DIR.rglob("*") if p.is_file())
    assert total <= 8 * 1024 * 1024, f"demo model is {total / 1e6:.1f} MB"


def test_demo_tokenizer_handles_any_text(demo):
    _, fast, _ = demo
    slow = CLIPTokenizer.from_pretrained(DEMO_MODEL_DIR)
    for text in ("a red circle", "A photo of a LARGE blue star!", "un cercle rouge", "猫の写真 🐱", "z" * 10000):
        ids = fast(text, truncation=True)["input_ids"]
        assert ids == slow(text, truncation=True)["input_ids"]
        assert ids[0] == fast.bos_token_id and ids[-1] == fast.eos_token_id and len(ids) <= 77
    for word in COLOURS + SHAPES + SIZES:  # every word the demo must know is a single token
        assert len(fast(word, add_special_tokens=False)["input_ids"]) == 1, word


@pytest.fixture(scope="module")
def other_gallery():
    return drawing_other.gallery(per_combo=5, seed=20240607)


@pytest.fixture(scope="module")
def synth_gallery():
    return [(im, {k: a[k] for k in ("colour", "shape", "size")}) for im, a in synth.gallery(480, seed=987654)]


def test_demo_model_ranks_independently_drawn_shapes(demo, other_gallery):
    _check(demo, other_gallery, "drawing_other")


def test_demo_model_ranks_unseen_synth_gallery(demo, synth_gallery):
    _check(demo, synth_gallery, "synth")


@pytest.fixture(scope="module")
def api_gallery():
    """480 demo images (5 of each colour x shape x size) at a seed the training never used."""
    return [(jpeg_bytes(img), meta) for img, meta in synth.gallery(480, seed=4242)]


@pytest.mark.django_db(transaction=True)
def test_demo_model_ranks_through_the_api(client, redis, api_gallery):
    """The same bar through the whole app: upload, ingest, index and `/api/search`."""
    assert selectors.model_info()["is_demo"], "ranking quality needs the bundled demo model (CLIP_MODEL_NAME=demo)"
    # Neutral file names: the keyword side would otherwise find "red circle" in the demo names.
    rows = upload_and_ingest(api_gallery, redis, name=lambda i, meta: f"photo-{i:04d}.jpg")
    position = {row.pk: i for i, row in enumerate(rows)}
    metas = [meta for _, meta in api_gallery]
    queries, ranked, relevant = [], [], []
    for colour in COLOURS:
        for shape in SHAPES:
            q = f"{'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}"
            results = client.get("/api/search", {"q": q, "k": 5}).json()["results"]
            assert len(results) == 5
            queries.append(q)
            ranked.append([position[r["id"]] for r in results])
            relevant.append(relevant_ids(metas, colour=colour, shape=shape))
    mean = precision_at_k(ranked, relevant, 5)
    worst = sorted(((precision_at_k([r], [rel], 5), q) for q, r, rel in zip(queries, ranked, relevant)))[:8]
    print(f"API colour x shape precision@5 {mean:.3f}; worst {worst[:4]}")
    assert mean >= MIN_COLOUR_SHAPE, f"mean precision@5 {mean:.3f}; worst: {worst}"
