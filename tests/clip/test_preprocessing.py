"""open_image and Preprocessor: parity with transformers' CLIPImageProcessor and bad-input handling."""
import io

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import CLIPImageProcessor
from transformers import logging as hf_logging

from embeddings.clip.preprocessing import Preprocessor, open_image

hf_logging.set_verbosity_error()  # CLIPImageProcessor warns that it falls back to its PIL backend
PARITY_TOL = 1e-5  # measured: the tensors are bit-identical (LUT holds transformers' exact float32 values)


@pytest.fixture(scope="module")
def processor():
    return CLIPImageProcessor()


@pytest.fixture(scope="module")
def pre(processor):
    return Preprocessor(processor)


def photo(w, h, seed=0):
    """Smooth gradients plus noise: resize filters and rounding both matter on it."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, w)[None, :, None] + np.linspace(0, 120, h)[:, None, None] * np.array([1, -1, 0.5])
    return Image.fromarray(np.clip(x + rng.normal(0, 25, (h, w, 3)), 0, 255).astype(np.uint8))


def encode(im, fmt, **kw):
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def reference(processor, im):
    return processor(im, return_tensors="pt")["pixel_values"]


# (301, 224) and (224, 301) leave an odd margin to crop: they pin the floor in the crop offset.
SIZES = [(1, 1), (10, 500), (500, 10), (224, 224), (225, 223), (301, 224), (224, 301), (640, 480), (3000, 2000)]


@pytest.mark.parametrize("size", SIZES)
def test_parity_sizes(processor, pre, size):
    im = photo(*size)
    ours, ref = pre([im]), reference(processor, im)
    assert ours.shape == ref.shape == (1, 3, 224, 224)
    assert ours.dtype == torch.float32
    assert (ours - ref).abs().max().item() < PARITY_TOL


def _modes():
    base = photo(97, 61, seed=1)
    rgba = base.copy()
    rgba.putalpha(Image.linear_gradient("L").resize(base.size))
    p_trans = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    p_trans.info["transparency"] = 3
    return {
        "RGB": base, "RGBA": rgba, "L": base.convert("L"), "P": base.convert("P", palette=Image.Palette.ADAPTIVE),
        "P+transparency": p_trans, "CMYK": base.convert("CMYK"), "LA": rgba.convert("LA"), "1": base.convert("1"),
    }


@pytest.mark.parametrize("mode", list(_modes()))
def test_parity_modes(processor, pre, mode):
    im = _modes()[mode]
    rgb = open_image(im)
    assert rgb.mode == "RGB" and rgb.size == im.size
    # The processor converts the raw image itself (white background under alpha): same result.
    assert (pre([rgb]) - reference(processor, im)).abs().max().item() < PARITY_TOL


def test_transparency_composited_over_white():
    im = Image.new("RGBA", (8, 8), (255, 0, 0, 0))
    assert open_image(im).getpixel((0, 0)) == (255, 255, 255)


def test_16_bit_greyscale_is_scaled_not_clipped():
    a = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    rgb = np.asarray(open_image(encode(Image.fromarray(a), "PNG")))
    assert rgb.shape == (16, 64, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[0, -1, 0] == 255
    assert 100 < rgb[0, 32, 0] < 160  # mid-grey stays mid-grey (PIL's convert would clip it to 255)


def test_int32_and_float_modes_become_rgb(pre):
    for im in (Image.fromarray(np.arange(40 * 30, dtype=np.int32).reshape(30, 40) * 50),
               Image.fromarray(np.random.default_rng(0).random((30, 40), dtype=np.float32))):
        rgb = open_image(im)
        assert rgb.mode == "RGB" and np.asarray(rgb).std() > 10
        assert pre([rgb]).shape == (1, 3, 224, 224)


def test_sources_bytes_path_filelike_pil(tmp_path):
    im = photo(50, 40)
    data = encode(im, "PNG")
    path = tmp_path / "a.png"
    path.write_bytes(data)
    results = [open_image(s) for s in (data, path, str(path), io.BytesIO(data), im)]
    for r in results:
        assert np.array_equal(np.asarray(r), np.asarray(im))


def test_exif_orientation_applied():
    im = Image.new("RGB", (60, 30), "white")
    im.paste((255, 0, 0), (0, 0, 10, 30))  # red stripe on the left edge
    exif = Image.Exif()
    exif[0x0112] = 6  # stored image must be rotated 90 degrees clockwise for display
    out = open_image(encode(im, "JPEG", exif=exif, quality=95))
    assert out.size == (30, 60)
    r, g, b = out.getpixel((15, 2))  # left edge rotated clockwise ends up at the top
    assert r > 200 and g < 60 and b < 60
    assert open_image(encode(im, "JPEG", quality=95)).size == (60, 30)


def test_animated_gif_first_frame():
    frames = [Image.new("RGB", (20, 20), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 3
    assert open_image(data).getpixel((10, 10)) == (255, 0, 0)


def test_draft_decodes_big_jpeg_smaller_but_close(processor, pre):
    data = encode(photo(3000, 2000), "JPEG", quality=90)
    full, fast = open_image(data), open_image(data, draft=True)
    assert full.size == (3000, 2000) and fast.size[1] < 1000 and min(fast.size) >= 224
    diff = (pre([fast]) - reference(processor, full)).abs().mean().item()
    assert diff < 0.05  # a different anti-aliasing filter, not a different picture
    vga = encode(photo(640, 480), "JPEG", quality=90)
    half = open_image(vga, draft=True)
    assert half.size == (320, 240)  # twice the target: half the DCT scale, still >= 224
    # (what that does to embeddings and rankings: tests/clip/test_shortcuts.py)
    small = encode(photo(400, 300), "JPEG")
    assert open_image(small, draft=True).size == (400, 300)  # under twice the target: exact decode
    assert open_image(encode(photo(600, 448), "JPEG"), draft=True).size == (300, 224)  # the edge: 2 x 224
    assert open_image(encode(photo(600, 447), "JPEG"), draft=True).size == (600, 447)


@pytest.mark.parametrize("data,why", [
    (b"", "empty"),
    (b"<html><body>not an image</body></html>", "not a recognised image"),
    (b"hello, I am a text file\n" * 20, "not a recognised image"),
    (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
     "not a recognised image"),
])
def test_non_images_raise_value_error(data, why):
    with pytest.raises(ValueError, match=why):
        open_image(data)


def test_zero_byte_and_html_files_named_png(tmp_path):
    empty, html = tmp_path / "empty.png", tmp_path / "page.png"
    empty.write_bytes(b"")
    html.write_bytes(b"<!doctype html><html></html>")
    with pytest.raises(ValueError, match="empty"):
        open_image(empty)
    with pytest.raises(ValueError, match="not a recognised image"):
        open_image(html)
    with pytest.raises(ValueError, match="not found"):
        open_image(tmp_path / "missing.png")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_image_raises(fmt):
    data = encode(photo(200, 150), fmt)
    with pytest.raises(ValueError, match="corrupt or truncated"):
        open_image(data[: len(data) // 2])


def test_decompression_bomb_rejected_before_decoding():
    data = encode(Image.new("L", (2000, 2000)), "PNG")  # tiny file, 4 MP
    with pytest.raises(ValueError, match="too large"):
        open_image(data, max_pixels=1_000_000)
    assert open_image(data, max_pixels=4_000_000).size == (2000, 2000)


def test_pil_bomb_limit_is_turned_into_value_error(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    data = encode(Image.new("L", (100, 100)), "PNG")  # 10x PIL's limit
    with pytest.raises(ValueError, match="decompression bomb"):
        open_image(data)


def test_preprocessor_from_config_dict_and_batch(processor):
    cfg = {"size": {"shortest_edge": 64}, "crop_size": {"height": 48, "width": 64}, "resample": 3,
           "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25], "rescale_factor": 1 / 255}
    ims = [photo(100, 80, seed=s) for s in range(3)]
    ref = CLIPImageProcessor(**cfg)(ims, return_tensors="pt")["pixel_values"]
    ours = Preprocessor(cfg)(ims)
    assert ours.shape == ref.shape == (3, 3, 48, 64)
    assert (ours - ref).abs().max().item() < PARITY_TOL


def test_unsupported_processor_config_is_refused():
    with pytest.raises(ValueError, match="unsupported"):
        Preprocessor({"size": {"height": 224, "width": 224}, "crop_size": {"height": 224, "width": 224}})


@pytest.mark.parametrize("size", [(1, 100_000), (100_000, 1), (3, 40_000)])
def test_extreme_strips_are_cut_before_the_resize(size):
    """A 1 x 100,000 strip would need a 224 x 22.4 M pixel intermediate; the centre is cut first."""
    import time

    from embeddings.clip.preprocessing import MAX_ASPECT

    pre = Preprocessor({"size": {"shortest_edge": 224}, "crop_size": {"height": 224, "width": 224}})
    strip = Image.new("RGB", size, (200, 30, 30))
    started = time.perf_counter()
    out = pre.resize_crop(strip)
    assert out.size == (224, 224) and time.perf_counter() - started < 1.0
    assert np.asarray(out)[112, 112].tolist() == [200, 30, 30]
    assert MAX_ASPECT >= 50  # a 10 x 500 image (50:1) still matches the processor to the bit
