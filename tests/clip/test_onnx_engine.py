"""CLIP_ENGINE=onnx against the torch engine (the reference): same embeddings for images and texts,
single and batched, on the demo model and the ViT-B/32 architecture; the export cache on disk
survives a restart and a damaged one is rebuilt, never used; how `auto` picks engine and precision."""
import os
import subprocess
import sys

import numpy as np
import onnx
import pytest

from embeddings.clip import device, loading, onnx_engine
from embeddings.clip.service import CLIPService
from tests.support import ROOT

TEXTS = ["a red circle", "a small blue square on a white background", "green", "a large yellow star " * 3]


def _pixels(tm, n, seed=0):
    """Drawn pictures (shapes on backgrounds) through the model's own preprocessing."""
    from demo import synth

    out = np.empty((n, 3, *tm.preprocessor.crop), np.float32)
    for i, (img, _) in enumerate(synth.gallery(n, seed=seed)):
        tm.preprocessor.to_array(tm.preprocessor.resize_crop(img), out[i])
    return out


def _cos(a, b):
    return (a * b).sum(axis=1)


def _compare(tm, om, n_images, texts, bar_image, bar_text):
    """Cosine of the ONNX model's embeddings to the torch model's: each image and text one by one,
    then all in one batch (texts padded together)."""
    pixels = _pixels(tm, n_images)
    ref_img, ref_txt = tm.image_features(pixels), tm.text_features(texts)
    batched_img, batched_txt = om.image_features(pixels), om.text_features(texts)
    single_img = np.concatenate([om.image_features(pixels[i:i + 1]) for i in range(n_images)])
    single_txt = np.concatenate([om.text_features([t]) for t in texts])
    for got in (batched_img, single_img):
        assert got.shape == ref_img.shape and got.dtype == np.float32
        assert _cos(got, ref_img).mean() >= bar_image, _cos(got, ref_img)
    for got in (batched_txt, single_txt):
        assert got.shape == ref_txt.shape
        assert _cos(got, ref_txt).mean() >= bar_text, _cos(got, ref_txt)
    assert np.allclose(np.linalg.norm(batched_img, axis=1), 1, atol=1e-4)


@pytest.fixture(scope="module")
def demo_torch():
    return loading.load_torch("demo", "cpu", "fp32")


@pytest.mark.parametrize("precision,bar", [("fp32", 0.9999), ("int8", 0.999)])
def test_demo_onnx_matches_torch(demo_torch, precision, bar):
    om = onnx_engine.from_torch(demo_torch, precision)
    assert om.engine == "onnx" and om.precision == precision and om.dim == demo_torch.dim
    _compare(demo_torch, om, 4, TEXTS, bar, bar)
    ops = {t: {n.op_type for n in onnx.load(str(om.folder / f"{t}.onnx")).graph.node} for t in ("image", "text")}
    # The text tower takes dynamic int8 where the CPU has an int8 dot product, 8-bit blocks elsewhere.
    quantised = {"image": "DynamicQuantizeLinear",
                 "text": "DynamicQuantizeLinear" if device.cpu_has_int8_dot() else "MatMulNBits"}
    for tower, op in quantised.items():
        assert (op in ops[tower]) == (precision == "int8"), (tower, sorted(ops[tower]))


@pytest.mark.slow
@pytest.mark.parametrize("precision,bar", [("fp32", 0.9999), ("int8", 0.999)])
def test_vitb32_onnx_matches_torch(vitb32_dir, precision, bar):
    tm = loading.load_torch(vitb32_dir, "cpu", "fp32")
    om = onnx_engine.from_torch(tm, precision)
    assert om.dim == 512
    _compare(tm, om, 2, TEXTS[:2], bar, bar)


def test_service_defaults_to_onnx_on_the_cpu_and_reports_it():
    onnx = CLIPService("demo", device="cpu", enable_caching=False)
    torch_ = CLIPService("demo", device="cpu", precision="fp32", enable_caching=False, engine="torch")
    info = onnx.get_model_info()
    assert (info["engine"], info["precision"], info["device"]) == ("onnx", "int8", "cpu")
    assert torch_.get_model_info()["engine"] == "torch"
    assert _cos(onnx.embed_texts(TEXTS), torch_.embed_texts(TEXTS)).min() >= 0.9999
    with pytest.raises(ValueError, match="item 1"):  # the service's checks are the engine's too
        onnx.embed_texts(["red", " "])


def test_engine_and_precision_choice(monkeypatch):
    assert device.choose_engine("auto", "cpu") == "onnx"
    assert device.choose_engine("auto", "cuda") == "torch"
    assert device.choose_engine("auto", "cpu", "bf16") == "torch"  # only torch runs bf16
    assert device.choose_engine("torch", "cpu") == "torch" and device.choose_engine("onnx", "cpu") == "onnx"
    for vnni in (True, False):
        monkeypatch.setattr(device, "cpu_has_int8_dot", lambda vnni=vnni: vnni)
        assert device.choose_precision("auto", "cpu", "onnx") == "int8"
        assert onnx_engine.weight_type() == ("QInt8" if vnni else "QUInt8")
    assert device.choose_precision("bf16", "cpu", "onnx") == "fp32"
    assert device.choose_precision("int8", "cpu", "onnx") == "int8"


def test_cpu_int8_dot_detection(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    real_path = device.Path
    monkeypatch.setattr(device, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    fake.write_text("model name\t: AMD EPYC\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n")
    assert device.cpu_has_int8_dot() and device.cpu_kind().startswith("AVX-512 + bf16, VNNI")
    fake.write_text("model name\t: AMD EPYC\nflags\t\t: fpu avx avx2 fma\n")
    assert not device.cpu_has_int8_dot() and device.cpu_kind().startswith("AVX2 (AMD EPYC")


# -- the cache on disk -------------------------------------------------------------------------
def test_cache_survives_a_restart(demo_torch, tmp_path):
    root = tmp_path / "data" / "onnx"
    before = onnx_engine.EXPORT_COUNT
    om = onnx_engine.from_torch(demo_torch, "fp32", root)
    assert onnx_engine.EXPORT_COUNT == before + 1 and om.folder.parent == root
    mtimes = {p.name: p.stat().st_mtime_ns for p in om.folder.iterdir()}
    script = ("from embeddings.clip import onnx_engine; from embeddings.clip.service import CLIPService; "
              "s = CLIPService('demo', device='cpu', precision='fp32', engine='onnx'); s.embed_texts(['red']); "
              "print('EXPORTS', onnx_engine.EXPORT_COUNT, s.load().folder)")
    env = {**os.environ, "CLIPSEARCH_DATA_DIR": str(tmp_path / "data"), "CLIP_LOG_LEVEL": "WARNING"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert f"EXPORTS 0 {om.folder}" in out.stdout  # the new process used the files, exported nothing
    assert {p.name: p.stat().st_mtime_ns for p in om.folder.iterdir()} == mtimes


@pytest.mark.parametrize("damage", ["flip bytes", "truncate", "no manifest"])
def test_damaged_cache_is_rebuilt_not_used(demo_torch, tmp_path, damage):
    root = tmp_path / "onnx"
    ref = onnx_engine.from_torch(demo_torch, "fp32", root)
    pixels = _pixels(demo_torch, 2)
    expected = ref.image_features(pixels)
    target = ref.folder / "image.onnx"
    data = target.read_bytes()
    if damage == "flip bytes":  # same size, different weights: would load and give wrong answers
        target.write_bytes(data[: len(data) // 2] + bytes(b ^ 0xFF for b in data[len(data) // 2:][:4096])
                           + data[len(data) // 2 + 4096:])
    elif damage == "truncate":  # a half-written file
        target.write_bytes(data[: len(data) // 3])
    else:  # killed before the manifest was written
        (ref.folder / "manifest.json").unlink()
    assert not onnx_engine.is_valid(ref.folder)
    before = onnx_engine.EXPORT_COUNT
    again = onnx_engine.from_torch(demo_torch, "fp32", root)
    assert onnx_engine.EXPORT_COUNT == before + 1 and again.folder == ref.folder
    assert onnx_engine.is_valid(again.folder)
    assert _cos(again.image_features(pixels), expected).min() >= 0.99999


def test_cache_key_follows_precision_and_model_files(demo_torch, tmp_path):
    assert onnx_engine.cache_key(demo_torch, "fp32") != onnx_engine.cache_key(demo_torch, "int8")
    assert onnx_engine.cache_key(demo_torch, "fp32") == onnx_engine.cache_key(demo_torch, "fp32")
    import shutil

    copy = shutil.copytree(demo_torch.source, tmp_path / "copy")
    other = loading.load_torch(str(copy), "cpu", "fp32")
    key = onnx_engine.cache_key(other, "fp32")
    os.utime(copy / "model.safetensors", ns=(1, 1))  # retrained weights: another export
    assert onnx_engine.cache_key(other, "fp32") != key
