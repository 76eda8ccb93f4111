"""Image loading and CLIP preprocessing.

`open_image` turns any upload into a verified RGB PIL image (or a ValueError saying why not);
`Preprocessor` reproduces `CLIPImageProcessor` bit for bit, only faster: the resize is the same
PIL call on the same output size, the crop happens on the PIL image (no full-size array copy), and
rescale+normalise is a 256-entry lookup table per channel holding exactly the float32 values that
transformers' rescale (float64 multiply, cast to float32) and normalise (float32) produce.
"""
from __future__ import annotations

import io
import os
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# torch and transformers are imported where they are used, not here: the upload policy decodes
# through open_image in processes (admin, commands) that never load a model.

# Largest image we agree to decode (pixels) when the caller sets no limit. PIL's own bomb limit is
# global state; this is per call. The app passes its own (CLIPSEARCH_MAX_IMAGE_PIXELS).
DEFAULT_MAX_PIXELS = 100_000_000
DEFAULT_TARGET = 224
# With `draft`, a JPEG at least this many times the target on its shortest side is decoded at a
# reduced DCT scale (never below the target). At 2, a 640x480 photo decodes at 320x240: decode
# and preprocessing 2.4 ms instead of 4.6 on one thread, 0.3 MP ingest 49 img/s instead of 46
# (ViT-B/32 int8, AVX-512), mean cosine to a full decode through torch fp32 0.99984 (0.99985 at 4).
DRAFT_MIN_RATIO = 2
# Longest side over shortest side beyond which the centre is cut out before resizing.
MAX_ASPECT = 64


def _check_not_empty(source) -> None:
    if isinstance(source, (bytes, bytearray, memoryview)) and len(source) == 0:
        raise ValueError("empty image data (0 bytes)")
    if isinstance(source, (str, os.PathLike)) and Path(source).is_file() and Path(source).stat().st_size == 0:
        raise ValueError(f"empty image file (0 bytes): {source}")


def open_image(source, *, max_pixels: int = DEFAULT_MAX_PIXELS, draft: bool = False,
               target: int = DEFAULT_TARGET, formats: list[str] | None = None) -> Image.Image:
    """Decode `source` (bytes, path, binary file object or PIL image) into an RGB image.

    Applies EXIF orientation, keeps the first frame of animations and composites transparency
    over white (as CLIPImageProcessor does). `formats` limits which of Pillow's parsers may
    open it (None: any; the app passes the format its upload policy sniffed). With `draft`, a
    JPEG at least DRAFT_MIN_RATIO times `target` on its shortest side is decoded at a reduced DCT
    scale (still >= target on both sides): several times faster on 12 MP photos, at the cost of
    exact parity with a full-size decode.
    """
    if isinstance(source, Image.Image):
        return to_rgb(upright(source))
    _check_not_empty(source)
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    try:
        with warnings.catch_warnings():
            # PIL only *warns* between MAX_IMAGE_PIXELS and twice that; make it an error too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(source, formats=formats) as im:
                if im.width * im.height > max_pixels:
                    raise ValueError(f"image too large: {im.width}x{im.height} pixels "
                                     f"(limit {max_pixels:,}); refusing a possible decompression bomb")
                if im.width == 0 or im.height == 0:
                    raise ValueError("image has zero width or height")
                if draft and im.format == "JPEG" and min(im.size) >= DRAFT_MIN_RATIO * target:
                    im.draft("RGB", (target, target))
                im.seek(0)  # first frame of animated GIF/PNG/WebP
                im.load()  # full decode here, so truncated/corrupt data fails now, not later
                return to_rgb(upright(im))
    except ValueError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ValueError(f"image too large, refusing a possible decompression bomb: {e}") from None
    except UnidentifiedImageError:
        raise ValueError("not a recognised image format (empty, text/HTML, SVG or corrupt data?)") from None
    except FileNotFoundError:
        raise ValueError(f"image file not found: {source}") from None
    except (OSError, SyntaxError, EOFError, struct.error, IndexError, TypeError) as e:
        raise ValueError(f"corrupt or truncated image: {e}") from None


# EXIF orientation -> the turn that shows the picture upright (ImageOps.exif_transpose's table).
TURNS = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
         5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
         8: Image.Transpose.ROTATE_90}


def exif_orientation(im: Image.Image) -> int | None:
    """The EXIF orientation tag (5-8: shown turned by 90 degrees), or None."""
    try:
        return im.getexif().get(0x0112)
    except Exception:  # a broken EXIF block costs the rotation, not the picture
        return None


def upright(im: Image.Image, orientation: int | None = None) -> Image.Image:
    """The picture as it is meant to be seen. `orientation` read beforehand lets a caller shrink the
    image first (thumbnails) and turn only the small copy."""
    orientation = exif_orientation(im) if orientation is None else orientation
    return im.transpose(TURNS[orientation]) if orientation in TURNS else im


def to_rgb(im: Image.Image) -> Image.Image:
    """Any mode as RGB, the one way for model input and thumbnails alike."""
    if im.mode == "RGB":
        return im
    if im.mode.startswith("I") or im.mode == "F":
        # 16/32-bit and float greyscale: PIL's convert() clips to 0..255, which turns a 16-bit
        # image white; scale the range down instead.
        a = np.asarray(im, dtype=np.float64)
        hi = float(a.max()) if a.size else 0.0
        if im.mode == "F" and hi <= 1.0:
            a = a * 255.0
        elif im.mode.startswith("I;16") or hi > 255:
            a = a / 257.0
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8), "L").convert("RGB")
    try:
        if "A" in im.getbands() or "a" in im.getbands() or im.info.get("transparency") is not None:
            rgba = im.convert("RGBA")
            white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
            return Image.alpha_composite(white, rgba).convert("RGB")
        return im.convert("RGB")
    except (ValueError, OSError) as e:
        raise ValueError(f"cannot convert image mode {im.mode} to RGB: {e}") from None


def _get(cfg, key, default=None):
    value = cfg.get(key) if isinstance(cfg, dict) else getattr(cfg, key, None)
    return default if value is None else value


class Preprocessor:
    """Fast equivalent of `CLIPImageProcessor(images, return_tensors="pt")["pixel_values"]`.

    Built from a CLIPImageProcessor or its config dict (preprocessor_config.json). Supports the
    CLIP recipe (resize shortest edge, centre crop, rescale, normalise) and SigLIP's (resize to
    height x width, no crop): anything else raises.
    """

    def __init__(self, cfg):
        size, crop = _get(cfg, "size", {"shortest_edge": 224}), _get(cfg, "crop_size", {"height": 224, "width": 224})
        size = {"shortest_edge": size} if isinstance(size, int) else dict(size)
        crop = {"height": crop, "width": crop} if isinstance(crop, int) else dict(crop)
        # "squash" (SigLIP's recipe): resize to height x width, aspect not kept, no crop.
        # (SigLIP's processors set no crop at all; a CLIP-style config naming a crop size crops by default.)
        no_crop = _get(cfg, "crop_size") is None or not _get(cfg, "do_center_crop", True)
        self.squash = bool(size.get("height") and size.get("width") and no_crop and _get(cfg, "do_resize", True))
        if self.squash:
            crop = {"height": size["height"], "width": size["width"]}
            size = {"shortest_edge": min(size["height"], size["width"])}
        elif not (size.get("shortest_edge") and crop.get("height") and crop.get("width")
                  and _get(cfg, "do_resize", True) and _get(cfg, "do_center_crop", True)):
            raise ValueError(f"unsupported image processor config (size={size}, crop_size={crop})")
        self.shortest_edge, self.crop = int(size["shortest_edge"]), (int(crop["height"]), int(crop["width"]))
        self.resample = Image.Resampling(int(_get(cfg, "resample", Image.Resampling.BICUBIC)))
        scale = float(_get(cfg, "rescale_factor", 1 / 255)) if _get(cfg, "do_rescale", True) else 1.0
        from transformers.image_utils import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

        mean = np.asarray(_get(cfg, "image_mean", OPENAI_CLIP_MEAN), np.float32)
        std = np.asarray(_get(cfg, "image_std", OPENAI_CLIP_STD), np.float32)
        if not _get(cfg, "do_normalize", True):
            mean, std = np.zeros(3, np.float32), np.ones(3, np.float32)
        # Same arithmetic as transformers (float64 rescale cast to float32, then float32
        # normalise), done once per possible byte value instead of once per pixel.
        levels = (np.arange(256, dtype=np.float64) * scale).astype(np.float32)
        self.lut = np.ascontiguousarray((levels[None, :] - mean[:, None]) / std[:, None], np.float32)

    @property
    def target(self) -> int:
        """Shortest side the resize produces; Image.draft must not decode below it."""
        return self.shortest_edge

    def output_size(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) after resize, truncated like transformers' get_resize_output_image_size."""
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = self.shortest_edge, int(self.shortest_edge * long / short)
        return (new_short, new_long) if width <= height else (new_long, new_short)

    def resize_crop(self, im: Image.Image) -> Image.Image:
        im = to_rgb(im)
        if self.squash:
            size = (self.crop[1], self.crop[0])
            return im if im.size == size else im.resize(size, resample=self.resample)
        w, h = im.size
        if max(w, h) > MAX_ASPECT * min(w, h):
            # A strip (1 x 100,000 pixels) would be resized to a huge intermediate (224 x 22.4 M)
            # only for its centre to be kept: cut the centre first, MAX_ASPECT times as long as
            # it is wide. Up to that ratio the result is the processor's to the bit.
            keep = MAX_ASPECT * min(w, h)
            left, top = ((w - keep) // 2, 0) if w > h else (0, (h - keep) // 2)
            im = im.crop((left, top, left + (keep if w > h else w), top + (h if w > h else keep)))
        size = self.output_size(*im.size)
        if size != im.size:
            im = im.resize(size, resample=self.resample)
        ch, cw = self.crop
        # Floor offsets like transformers; outside the image PIL fills zeros, as its pad does.
        top, left = (im.height - ch) // 2, (im.width - cw) // 2
        return im.crop((left, top, left + cw, top + ch))

    def to_array(self, im: Image.Image, out: np.ndarray) -> np.ndarray:
        """Write normalised CHW float32 values of a resized+cropped RGB image into `out`."""
        rgb = np.asarray(im)
        for c in range(3):
            np.take(self.lut[c], rgb[:, :, c], out=out[c])
        return out

    def __call__(self, images):
        """A (n, 3, height, width) float32 torch tensor, as the processor's pixel_values."""
        import torch

        images = list(images)
        out = np.empty((len(images), 3, *self.crop), np.float32)
        for i, im in enumerate(images):
            self.to_array(self.resize_crop(im), out[i])
        return torch.from_numpy(out)
