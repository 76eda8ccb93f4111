"""Models in Immich's ONNX layout: the demo model exported by demo/export_immich.py loads through
CLIP_MODEL_NAME and gives the demo model's embeddings; Immich's resize modes and text cleaning
against hand-computed expectations; names that cannot load say why."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from demo import synth
from demo.export_immich import export
from embeddings.clip import immich, loading
from embeddings.clip.device import ModelLoadError
from embeddings.clip.service import CLIPService
from tests.support import ROOT

CFG = {"size": [4, 4], "mean": [0.5, 0.25, 0.0], "std": [0.5, 0.25, 1.0], "interpolation": "bicubic"}


@pytest.fixture(scope="module")
def immich_dir(tmp_path_factory):
    return export(tmp_path_factory.mktemp("immich") / "demo-immich")


# -- preprocessing and text cleaning, by hand ---------------------------------------------------
def test_shortest_resizes_the_short_side_then_crops_the_centre():
    pre = immich.ImmichPreprocessor({**CFG, "resize_mode": "shortest", "interpolation": "nearest"})
    # 12 x 4: short side 4 -> 12 x 4 stays (ratio 3 * 4 = 12); centre crop left = int(6 - 2) = 4
    im = Image.fromarray(np.tile(np.arange(12, dtype=np.uint8) * 10, (4, 1))[:, :, None].repeat(3, 2))
    out = np.asarray(pre.resize_crop(im))[:, :, 0]
    assert out.shape == (4, 4) and list(out[0]) == [40, 50, 60, 70]
    # 2 x 5 (w x h): width -> 4, height int(5 / 2 * 4) = 10, then rows int(5 - 2) = 3 .. 6
    tall = Image.fromarray(np.repeat(np.arange(5, dtype=np.uint8)[:, None] * 50, 2, 1)[:, :, None].repeat(3, 2))
    resized = pre.resize_crop(tall)
    assert resized.size == (4, 4)
    expected = np.asarray(tall.resize((4, 10), Image.Resampling.NEAREST))[3:7, :, 0]
    assert np.array_equal(np.asarray(resized)[:, :, 0], expected)


def test_squash_ignores_the_aspect():
    pre = immich.ImmichPreprocessor({**CFG, "resize_mode": "squash", "interpolation": "nearest"})
    im = Image.fromarray(np.tile(np.arange(12, dtype=np.uint8) * 10, (4, 1))[:, :, None].repeat(3, 2))
    out = np.asarray(pre.resize_crop(im))[:, :, 0]
    # nearest on 12 -> 4 columns samples the centres of each 3-pixel span: 1, 4, 7, 10
    assert out.shape == (4, 4) and list(out[0]) == [10, 40, 70, 100]


def test_normalisation_is_immichs_arithmetic():
    pre = immich.ImmichPreprocessor({**CFG, "resize_mode": "squash"})
    im = Image.new("RGB", (4, 4), (255, 0, 51))
    out = pre.to_array(im, np.empty((3, 4, 4), np.float32))
    # (x / 255 - mean) / std: (1 - 0.5) / 0.5 = 1, (0 - 0.25) / 0.25 = -1, (0.2 - 0) / 1 = 0.2
    assert np.allclose(out[:, 0, 0], [1.0, -1.0, 0.2], atol=1e-6)
    with pytest.raises(ValueError, match="resize_mode"):
        immich.ImmichPreprocessor({**CFG, "resize_mode": "letterbox"})


@pytest.mark.parametrize("text,canonicalize,expected", [
    ("  a   red\tcircle\n", False, "a red circle"),
    ("A Red, Circle!", False, "A Red, Circle!"),
    ("  A  Red, Circle!\n(big) ", True, "a red circle big"),
    ("it's a dog's-life", True, "its a dogslife"),
])
def test_clean_text(text, canonicalize, expected):
    assert immich.clean_text(text, canonicalize) == expected


# -- the exported demo model ---------------------------------------------------------------------
def test_layout_written_by_the_export_script(immich_dir):
    for f in ("config.json", "visual/model.onnx", "visual/preprocess_cfg.json", "textual/model.onnx",
              "textual/tokenizer.json", "textual/tokenizer_config.json"):
        assert (immich_dir / f).is_file(), f
    cfg = json.loads((immich_dir / "config.json").read_text())
    assert cfg["embed_dim"] == 128 and cfg["text_cfg"]["context_length"] == 77
    assert immich.is_layout(immich_dir) and not immich.is_layout(immich_dir / "visual")


def test_tokens_are_padded_to_the_context_length(immich_dir):
    lm = CLIPService(str(immich_dir)).load()
    tokens = lm.tokenize(["a red circle", "x " * 500])["text"]
    assert tokens.dtype == np.int32 and tokens.shape == (2, 77)
    pad = lm.tokenizer.token_to_id("<|endoftext|>")
    assert tokens[0, 5:].tolist() == [pad] * 72  # <start> a red circle <end> then pad tokens


def test_immich_layout_gives_the_demo_embeddings(immich_dir):
    onnx = CLIPService(str(immich_dir), batch_size=3)
    info = onnx.get_model_info()
    assert (info["engine"], info["embedding_dim"], info["max_text_length"]) == ("onnx", 128, 77)
    ref = CLIPService("demo", precision="fp32", engine="torch")
    images = [img for img, _ in synth.gallery(5, seed=3)]  # 5 items at batch 3: static-batch loop, two calls
    texts = ["a red circle", "a small blue square", "GREEN star"]
    for got, want in ((onnx.embed_images(images), ref.embed_images(images)), (onnx.embed_texts(texts), ref.embed_texts(texts))):
        assert got.shape == want.shape and got.dtype == np.float32
        assert (got * want).sum(1).min() >= 0.999, (got * want).sum(1)


def test_masked_text_inputs_as_mclip_and_labse_take_them(tmp_path):
    """Immich's M-CLIP and LABSE graphs take int32 input_ids and attention_mask, not `text`."""
    folder = export(tmp_path / "demo-masked", text_inputs="input_ids+attention_mask")
    service = CLIPService(str(folder))
    lm = service.load()
    assert lm.text_inputs == ("input_ids", "attention_mask")
    feeds = lm.tokenize(["a red circle", "x " * 500])
    assert set(feeds) == {"input_ids", "attention_mask"}
    assert all(v.dtype == np.int32 and v.shape == (2, 77) for v in feeds.values())
    assert feeds["attention_mask"][0].tolist() == [1] * 5 + [0] * 72 and feeds["attention_mask"][1].all()
    texts = ["a red circle", "a small blue square", "GREEN star"]
    got, want = service.embed_texts(texts), CLIPService("demo", precision="fp32", engine="torch").embed_texts(texts)
    assert (got * want).sum(1).min() >= 0.999, (got * want).sum(1)
    # The graph reads masked-out tokens as padding: without the mask the words would be lost.
    blank = lm.textual.run(None, {"input_ids": feeds["input_ids"][:1], "attention_mask": np.zeros((1, 77), np.int32)})[0]
    assert float((blank[0] / np.linalg.norm(blank[0])) @ got[0]) < 0.99


def test_immich_name_through_clip_model_name(immich_dir):
    script = ("from embeddings.clip.service import get_clip_service as g; i = g().get_model_info(); "
              "print('INFO', i['engine'], i['model_path'], g().embed_texts(['red']).shape)")
    env = {**os.environ, "CLIP_MODEL_NAME": str(immich_dir), "CLIP_LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"INFO onnx {immich_dir} (1, 128)" in out.stdout


def test_unreachable_hub_name_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError, match="CLIP_MODEL_NAME='immich-app/ViT-B-32__openai'.*not reachable"):
        loading.load_model("immich-app/ViT-B-32__openai", "cpu", "fp32", "onnx")


def test_broken_immich_dir_is_a_load_error(immich_dir, tmp_path):
    import shutil

    broken = shutil.copytree(immich_dir, tmp_path / "broken")
    (broken / "textual" / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="Immich model.*pad_token"):
        CLIPService(str(broken)).load()
