"""Every speed shortcut keeps the answers.

Shortcuts: JPEG draft decoding (a reduced DCT scale for photos much larger than the model input),
the int8 image tower (CLIP_PRECISION=int8), bf16 (what the torch engine's `auto` picks on CPUs with
native bf16) and the ONNX Runtime engine in fp32 and int8 (CLIP_ENGINE=onnx, `auto` on the CPU).
Reference: fp32 on a full-size decode. Bars: mean cosine to the reference embedding >= 0.999 on
the demo model and on the ViT-B/32 architecture, and top-10 overlap >= 0.95 with the reference
ranking on the demo gallery (random ViT-B/32 weights rank noise, so overlap is checked on the demo
model only).
"""
import io

import numpy as np
import pytest

from demo import synth
from embeddings.clip.service import CLIPService

pytestmark = pytest.mark.slow

# Sides of the test photos, alternating: for the ViT-B/32 input (224) 960 decodes at a quarter of the
# DCT scale and 480 at half, so both draft regimes apply (the demo model's 64 gets 1/8 and 1/4).
SIDES = (960, 480)
# (draft decoding, precision, engine): torch is the reference engine; ONNX Runtime runs fp32 and int8.
SHORTCUTS = [(True, "fp32", "torch"), (False, "int8", "torch"), (True, "int8", "torch"), (True, "bf16", "torch"),
             (True, "fp32", "onnx"), (True, "int8", "onnx")]


def _big_jpeg(img, side) -> bytes:
    buf = io.BytesIO()
    img.resize((side, side)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@pytest.fixture(scope="module")
def big_jpegs():
    return [_big_jpeg(img, SIDES[i % 2]) for i, (img, _) in enumerate(synth.gallery(240, seed=2024))]


def _service(name, draft, precision, engine="torch"):
    service = CLIPService(name, device="cpu", precision=precision, enable_caching=False, engine=engine)
    service.draft = draft
    return service


def _top10(texts, images):
    return np.argsort(-(texts @ images.T), axis=1)[:, :10]


QUERIES = [f"a {c} {s}" for c in synth.COLOURS for s in synth.SHAPES]


@pytest.fixture(scope="module")
def demo_reference(big_jpegs):
    """fp32 on full decodes: image embeddings and the top 10 of each query (computed once)."""
    ref = _service("demo", False, "fp32")
    images = ref.embed_images(big_jpegs)
    return images, _top10(ref.embed_texts(QUERIES), images)


@pytest.mark.parametrize("draft,precision,engine", SHORTCUTS)
def test_demo_model_shortcut_keeps_embeddings_and_rankings(big_jpegs, demo_reference, draft, precision, engine):
    ref_img, ref_top = demo_reference
    fast = _service("demo", draft, precision, engine)
    info = fast.get_model_info()
    assert info["precision"] == precision and info["engine"] == engine
    fast_img = fast.embed_images(big_jpegs)
    assert (ref_img * fast_img).sum(1).mean() >= 0.999
    fast_top = _top10(fast.embed_texts(QUERIES), fast_img)
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(ref_top, fast_top)])
    assert overlap >= 0.95, overlap


@pytest.fixture(scope="module")
def vitb32_reference(big_jpegs, vitb32_dir):
    data = big_jpegs[::15][:8]  # 8 images of different colours and shapes, both sides
    return data, _service(vitb32_dir, False, "fp32").embed_images(data)


@pytest.mark.parametrize("draft,precision,engine", SHORTCUTS)
def test_vitb32_shortcut_keeps_embeddings(vitb32_reference, vitb32_dir, draft, precision, engine):
    data, ref = vitb32_reference
    fast = _service(vitb32_dir, draft, precision, engine).embed_images(data)
    assert ref.shape == (8, 512)
    assert (ref * fast).sum(1).mean() >= 0.999
