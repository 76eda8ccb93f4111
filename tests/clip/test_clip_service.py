"""CLIPService on a tiny random CLIP saved to disk (shapes, batching, caching, devices, precision)
and on the bundled demo model (the `demo` alias, text and image embeddings in one space).
The torch engine is the reference here (tests that look inside the model pin engine="torch");
the ONNX Runtime engine is compared with it in test_onnx_engine.py."""
from __future__ import annotations

import asyncio
import io
import shutil
import time
import weakref

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel, CLIPTokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode

from embeddings.clip import device, loading
from embeddings.clip.config import DEMO_MODEL_DIR, VALIDATED_CONFIG
from embeddings.clip.device import ModelLoadError
from embeddings.clip.loading import TorchModel
from embeddings.clip.service import CLIPService, get_clip_service

TEXTS = ["a red circle", "a small blue square on a white background", "green", "a large yellow star " * 3]


def build_tiny_clip(path, image_size=32, seed=0):
    """Save a tiny random CLIP in the standard layout: char-level BPE vocab, no merges."""
    chars = list(bytes_to_unicode().values())
    vocab = {t: i for i, t in enumerate(chars + [c + "</w>" for c in chars])}
    vocab["<|startoftext|>"], vocab["<|endoftext|>"] = len(vocab), len(vocab) + 1
    CLIPTokenizer(vocab=vocab, merges=[]).save_pretrained(path)
    bos, eos = vocab["<|startoftext|>"], vocab["<|endoftext|>"]
    small = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2)
    config = CLIPConfig(
        text_config=dict(vocab_size=len(vocab), max_position_embeddings=77, bos_token_id=bos, eos_token_id=eos,
                         pad_token_id=eos, **small),
        vision_config=dict(image_size=image_size, patch_size=8, **small), projection_dim=16)
    torch.manual_seed(seed)
    CLIPModel(config).save_pretrained(path)
    CLIPImageProcessorPil(size={"shortest_edge": image_size},
                          crop_size={"height": image_size, "width": image_size}).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory):
    return build_tiny_clip(tmp_path_factory.mktemp("tiny_clip"))


@pytest.fixture(scope="session")
def svc(model_dir):
    return CLIPService(model_dir, batch_size=2, max_workers=2, precision="fp32", engine="torch")


def shape_image(colour, shape="circle", size=(120, 90), bg="white"):
    im = Image.new("RGB", size, bg)
    d = ImageDraw.Draw(im)
    box = (size[0] // 4, size[1] // 4, 3 * size[0] // 4, 3 * size[1] // 4)
    (d.ellipse if shape == "circle" else d.rectangle)(box, fill=colour)
    return im


def png(im):
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


IMAGES = [shape_image("red"), shape_image("blue", "square"), shape_image("green", bg="black"),
          shape_image("yellow", "square", (40, 300))]


def assert_embeddings(e, n, dim):
    assert e.shape == (n, dim) and e.dtype == np.float32
    assert np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-5)


# -- sync API ----------------------------------------------------------------------------------
def test_embed_texts_shapes_and_norms(svc):
    e = svc.embed_texts(TEXTS)
    assert_embeddings(e, len(TEXTS), svc.dim)
    assert not np.allclose(e[0], e[1], atol=1e-3)  # different texts give different vectors


def test_text_batch_equals_one_by_one(svc):
    batch = svc.embed_texts(TEXTS)  # batch_size=2 + length sorting: padded batches
    single = np.stack([svc.embed_texts([t])[0] for t in TEXTS])
    assert np.abs(batch - single).max() < 1e-5


def test_text_padded_to_longest_not_77(svc, monkeypatch):
    lm = svc.load()
    lengths = []
    real = lm.model.get_text_features

    def spy(input_ids, attention_mask):
        lengths.append(input_ids.shape[1])
        assert attention_mask is not None and attention_mask.shape == input_ids.shape
        return real(input_ids=input_ids, attention_mask=attention_mask)

    monkeypatch.setattr(lm.model, "get_text_features", spy)
    svc.embed_texts(["red", "a red circle"], batch_size=8)
    assert lengths == [len(lm.tokenizer("a red circle")["input_ids"])]
    assert lengths[0] < 77
    lengths.clear()
    svc.embed_texts(["x " * 10_000])  # truncated to the model's positions, not an error
    assert lengths == [lm.max_text_len]


def test_embed_images_shapes_sources_and_batching(svc, tmp_path):
    e = svc.embed_images(IMAGES)
    assert_embeddings(e, len(IMAGES), svc.dim)
    single = np.stack([svc.embed_images([im])[0] for im in IMAGES])
    assert np.abs(e - single).max() < 1e-5
    path = tmp_path / "red.png"
    path.write_bytes(png(IMAGES[0]))
    for source in (png(IMAGES[0]), path, str(path), io.BytesIO(png(IMAGES[0]))):
        assert np.abs(svc.embed_images([source])[0] - e[0]).max() < 1e-5
    assert svc.embed_images([]).shape == (0, svc.dim)


def test_image_and_text_embeddings_share_a_space():
    """With the demo model, each caption scores highest with its own picture and each picture with
    its own caption (the tiny random model cannot show this: its towers are untrained)."""
    combos = [("red", "circle"), ("blue", "square"), ("green", "circle"), ("yellow", "square"),
              ("purple", "circle"), ("orange", "square")]
    service = CLIPService("demo", precision="fp32")
    texts = service.embed_texts([f"a {colour} {shape}" for colour, shape in combos])
    images = service.embed_images([shape_image(colour, shape) for colour, shape in combos])
    assert texts.shape == images.shape == (len(combos), service.dim)
    scores = texts @ images.T
    assert list(scores.argmax(axis=1)) == list(range(len(combos))), scores
    assert list(scores.argmax(axis=0)) == list(range(len(combos))), scores


def test_bad_texts_raise_value_error_naming_index(svc):
    for bad in ("", "   \n\t"):
        with pytest.raises(ValueError, match="empty"):
            svc.embed_texts([bad])
    with pytest.raises(ValueError, match="item 2"):
        svc.embed_texts(["ok", "fine", "  "])


def test_bad_image_in_batch_names_index(svc):
    with pytest.raises(ValueError, match="item 1.*not a recognised image"):
        svc.embed_images([IMAGES[0], b"<html></html>", IMAGES[1]])
    with pytest.raises(ValueError, match="empty"):
        svc.embed_images([b""])


def test_batch_safe_encodes_the_good_ones(svc):
    good = svc.embed_images(IMAGES[:3])
    truncated = png(IMAGES[2])[:200]
    res = svc.embed_image_batch_safe([IMAGES[0], b"junk", IMAGES[1], truncated, IMAGES[2]])
    assert res.indices == [0, 2, 4]
    assert set(res.errors) == {1, 3} and all(res.errors.values())
    assert np.abs(res.embeddings - good).max() < 1e-5
    none = svc.embed_image_batch_safe([b"", b"x"])
    assert none.embeddings.shape == (0, svc.dim) and set(none.errors) == {0, 1}


def test_warmup_and_model_info(svc, model_dir):
    svc.warmup()
    info = svc.get_model_info()
    for key in ("model_name", "model_path", "is_demo", "device", "precision", "embedding_dim", "image_size",
                "parameters", "batch_size", "process_rss_mb", "gpu_memory_allocated_mb", "gpu_memory_total_mb",
                "cached_models"):
        assert key in info
    assert info["model_path"] == model_dir and info["is_demo"] is False
    assert info["device"] == "cpu" and info["gpu_memory_allocated_mb"] is None
    assert info["embedding_dim"] == svc.dim == 16 and info["image_size"] == 32
    assert info["parameters"] == sum(p.numel() for p in svc.load().model.parameters()) > 0
    assert info["process_rss_mb"] > 10 and info["cached_models"] >= 1


# -- async API ---------------------------------------------------------------------------------
def test_async_methods(svc):
    async def main():
        t = await svc.encode_text("a red circle")
        i = await svc.encode_image(IMAGES[0])
        tb = await svc.encode_batch_text(TEXTS, batch_size=3)
        ib = await svc.encode_batch_images(IMAGES, batch_size=3)
        return t, i, tb, ib, await svc.compute_similarity(t, t), await svc.compute_similarity(t, i)

    t, i, tb, ib, same, cross = asyncio.run(main())
    assert t.shape == i.shape == (svc.dim,) and t.dtype == i.dtype == np.float32
    assert_embeddings(tb, len(TEXTS), svc.dim)
    assert_embeddings(ib, len(IMAGES), svc.dim)
    assert np.abs(tb[0] - t).max() < 1e-5 and np.abs(ib[0] - i).max() < 1e-5
    assert same == pytest.approx(1.0, abs=1e-5)
    assert cross == pytest.approx(float(t @ i), abs=1e-5) and -1 <= cross <= 1
    with pytest.raises(ValueError):
        asyncio.run(svc.encode_text(" "))


def test_async_does_not_block_event_loop(svc, monkeypatch):
    real = svc.embed_texts

    def slow(texts, batch_size=None):
        time.sleep(0.4)
        return real(texts, batch_size)

    monkeypatch.setattr(svc, "embed_texts", slow)
    ticks = []

    async def ticker():
        for _ in range(5):
            ticks.append(time.monotonic())
            await asyncio.sleep(0.02)

    async def main():
        start = time.monotonic()
        await asyncio.gather(svc.encode_text("red"), ticker())
        return start

    start = asyncio.run(main())
    assert len(ticks) == 5 and ticks[-1] - start < 0.3  # ticked while the encoder slept


# -- caching, loading, devices -----------------------------------------------------------------
def test_second_service_shares_the_model(svc, model_dir):
    svc.load()
    before = loading.LOAD_COUNT
    other = CLIPService(model_dir, precision="fp32", batch_size=7, engine="torch")
    assert other.load() is svc.load()
    assert loading.LOAD_COUNT == before


def test_caching_disabled_loads_privately(svc, model_dir):
    before = loading.LOAD_COUNT
    private = CLIPService(model_dir, precision="fp32", enable_caching=False, engine="torch")
    assert private.load() is not svc.load()
    assert loading.LOAD_COUNT == before + 1
    assert np.abs(private.embed_texts(["red"]) - svc.embed_texts(["red"])).max() < 1e-6


def test_concurrent_first_use_loads_once(model_dir, tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    copy = str(shutil.copytree(model_dir, tmp_path / "copy"))
    before = loading.LOAD_COUNT
    services = [CLIPService(copy, precision="fp32", engine="torch") for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        loaded = list(pool.map(lambda s: s.load(), services))
    assert all(lm is loaded[0] for lm in loaded) and loading.LOAD_COUNT == before + 1
    services[0].cleanup()


def test_cleanup_frees_the_model(model_dir, tmp_path):
    copy = str(shutil.copytree(model_dir, tmp_path / "copy"))
    service = CLIPService(copy, precision="fp32", engine="torch")
    ref = weakref.ref(service.load().model)
    assert any(k[0] == copy for k in loading._CACHE)
    service.cleanup()
    assert not any(k[0] == copy for k in loading._CACHE)
    assert ref() is None
    assert service.embed_texts(["red"]).shape == (1, 16)  # usable again: reloads on demand
    service.cleanup()


@pytest.mark.parametrize("name", ["/nonexistent/clip-model", "no-such-org/no-such-clip-model-xyz"])
def test_bad_model_name_error_names_the_variable(name):
    with pytest.raises(ModelLoadError) as exc:
        CLIPService(name).load()
    msg = str(exc.value)
    assert isinstance(exc.value, RuntimeError)
    assert "CLIP_MODEL_NAME" in msg and name in msg and "demo" in msg


def test_directory_without_model_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="CLIP_MODEL_NAME"):
        CLIPService(str(tmp_path)).load()


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.choose_device("auto", 2.0) == "cpu"
    assert device.choose_device("cuda", 2.0) == "cpu"  # forced CUDA without CUDA falls back when allowed
    with pytest.raises(ModelLoadError, match="CLIP_DEVICE"):
        device.choose_device("cuda", 2.0, fallback_to_cpu=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (3 * 2**30, 8 * 2**30))
    assert device.choose_device("auto", 2.0) == "cuda"
    assert device.choose_device("auto", 4.0) == "cpu"  # not enough free memory
    assert device.choose_device("cpu", 0.0) == "cpu"
    assert device.choose_device("cuda", 100.0) == "cuda"  # forced


def test_auto_device_with_busy_gpu_loads_on_cpu(model_dir, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda *a: (1 * 2**30, 8 * 2**30))
    service = CLIPService(model_dir, gpu_memory_threshold=2.0, precision="fp32")
    assert service.device == "cpu"


def test_precision_choice(monkeypatch):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.choose_precision("auto", "cpu") == "bf16"
    assert device.choose_precision("auto", "cuda") == "fp16"
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    assert device.choose_precision("auto", "cpu") == "fp32"
    assert device.choose_precision("fp16", "cpu") == "fp32"  # no fp16 on the CPU
    assert device.choose_precision("bf16", "cpu") == "bf16"  # explicit wins
    assert device.choose_precision("fp32", "cuda") == "fp32"
    assert device.choose_precision("int8", "cpu") == "int8"
    assert device.choose_precision("int8", "cuda") == "fp16"  # int8 is a CPU mode


def test_int8_quantises_the_image_tower_only(model_dir):
    service = CLIPService(model_dir, device="cpu", precision="int8", enable_caching=False, engine="torch")
    model = service.load().model
    qlinear = torch.ao.nn.quantized.dynamic.Linear
    vision = [m for m in model.vision_model.modules() if isinstance(m, (torch.nn.Linear, qlinear))]
    assert vision and all(isinstance(m, qlinear) for m in vision)
    assert not any(isinstance(m, qlinear) for m in model.text_model.modules())
    fp32 = CLIPService(model_dir, device="cpu", precision="fp32", enable_caching=False, engine="torch")
    info = service.get_model_info()
    assert info["precision"] == "int8" and info["parameters"] == fp32.get_model_info()["parameters"]


def test_cpu_flag_detection_reads_cpuinfo(monkeypatch, tmp_path):
    fake = tmp_path / "cpuinfo"
    real_path = device.Path
    monkeypatch.setattr(device, "Path", lambda p: fake if p == "/proc/cpuinfo" else real_path(p))
    fake.write_text("flags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert device.cpu_has_native_bf16() is True
    fake.write_text("flags\t\t: fpu sse avx2 amx_bf16 amx_tile\n")
    assert device.cpu_has_native_bf16() is True
    fake.write_text("flags\t\t: fpu sse avx2 avx512f\n")
    assert device.cpu_has_native_bf16() is False


def test_auto_precision_on_real_load_path(model_dir, monkeypatch):
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    service = CLIPService(model_dir, device="cpu", precision="auto", enable_caching=False, engine="torch")
    assert service.get_model_info()["precision"] == "bf16"
    assert next(service.load().model.parameters()).dtype == torch.bfloat16
    e = service.embed_texts(["red"])
    assert e.dtype == np.float32 and abs(np.linalg.norm(e) - 1) < 1e-3


@pytest.mark.parametrize("name", ["tiny", "demo"])
def test_bf16_matches_fp32(name, model_dir):
    name = model_dir if name == "tiny" else "demo"
    fp32 = CLIPService(name, device="cpu", precision="fp32", enable_caching=False, engine="torch")
    bf16 = CLIPService(name, device="cpu", precision="bf16", enable_caching=False, engine="torch")
    texts = TEXTS + ["a small purple ring", "a large black cross", "an orange triangle"]
    images = IMAGES + [shape_image(c, s) for c in ("purple", "orange", "white") for s in ("circle", "square")]
    for a, b in ((fp32.embed_texts(texts), bf16.embed_texts(texts)),
                 (fp32.embed_images(images), bf16.embed_images(images))):
        assert b.dtype == np.float32
        assert (a * b).sum(axis=1).mean() >= 0.999


def test_cuda_oom_falls_back_to_cpu_once(model_dir, monkeypatch, caplog):
    service = CLIPService(model_dir, precision="fp32", enable_caching=False, engine="torch")
    service.load().device = "cuda"  # pretend: private instance, the forward below is faked for "cuda"
    real, calls = TorchModel.text_features, []

    def fake(self, texts):
        calls.append(self.device)
        if self.device == "cuda":
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")
        return real(self, texts)

    monkeypatch.setattr(TorchModel, "text_features", fake)
    e = service.embed_texts(["red"])
    assert calls == ["cuda", "cpu"] and e.shape == (1, 16)
    assert service.device == "cpu"
    assert "out of memory" in caplog.text


def test_cuda_oom_raises_without_fallback(model_dir, monkeypatch):
    service = CLIPService(model_dir, precision="fp32", enable_caching=False, fallback_to_cpu=False, engine="torch")
    service.load().device = "cuda"

    def fake(self, texts):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory (fake)")

    monkeypatch.setattr(TorchModel, "text_features", fake)
    with pytest.raises(torch.cuda.OutOfMemoryError):
        service.embed_texts(["red"])


def test_get_clip_service_is_the_configured_singleton():
    a, b = get_clip_service(), get_clip_service()
    assert a is b
    assert a.model_name == VALIDATED_CONFIG["model_name"] and a.batch_size == VALIDATED_CONFIG["batch_size"]


def test_demo_alias_loads_the_bundled_model():
    service = CLIPService("demo", precision="fp32")
    info = service.get_model_info()
    assert info["is_demo"] is True and info["model_path"] == str(DEMO_MODEL_DIR)
    assert_embeddings(service.embed_texts(["a red circle"]), 1, info["embedding_dim"])


def test_threads_share_one_service(svc):
    from concurrent.futures import ThreadPoolExecutor

    texts = [f"a {c} {s}" for c in ("red", "blue", "green", "white") for s in ("circle", "square ring", "star")]
    expected = svc.embed_texts(texts)
    with ThreadPoolExecutor(6) as pool:
        got = list(pool.map(lambda t: svc.embed_texts([t])[0], texts * 3))
    assert np.abs(np.stack(got) - np.concatenate([expected] * 3)).max() < 1e-5
