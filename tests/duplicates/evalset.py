"""The duplicates evaluation set, drawn here (numpy + Pillow, fonts from the system): originals
of four kinds (textures, photo-like 1/f noise, gradients with shapes, text), each with its
transformed copies (the "same picture" list of SPEC §15), series shots of some scenes (the same
scene moments apart: objects moved, the camera nudged, new sensor noise) and unrelated
distractors. Every item carries the bytes a user would add, so the rules are judged on what the
app itself makes of them (its thumbnail, then the hash)."""
from __future__ import annotations

import collections
import io
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFont

from embeddings.duplicates import pairs, rules

FONTS = sorted(p for d in ("/usr/share/fonts/truetype/dejavu", "/usr/share/fonts/truetype/liberation")
               for p in Path(d).glob("*.ttf"))
WORDS = ("harbour sunset meeting invoice garden river tickets mountain receipt street station coffee "
         "summer window bridge market concert festival museum kitchen letter school").split()
KINDS = ("texture", "noise", "gradient", "text")
SAME_TRANSFORMS = ("jpeg", "resize", "crop", "png_no_exif", "exif_rotated", "recolour", "screenshot", "combined")


@dataclass
class Item:
    name: str
    data: bytes
    scene: int  # which scene it shows (-1: a distractor of its own)
    picture: int  # which picture: copies share their original's; a series shot is a picture of its own
    transform: str = "original"
    taken: int | None = None  # seconds; None where EXIF is stripped
    extra: dict = field(default_factory=dict)


def _noise_field(rng, h, w, power=2.0):
    f = np.fft.fftfreq(h)[:, None] ** 2 + np.fft.fftfreq(w)[None, :] ** 2
    f[0, 0] = 1
    spectrum = (rng.normal(size=(h, w)) + 1j * rng.normal(size=(h, w))) / f ** (power / 2)
    out = np.real(np.fft.ifft2(spectrum))
    return (out - out.min()) / (np.ptp(out) + 1e-9)


def _background(rng, kind, h, w):
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    if kind == "texture":
        img = np.zeros((h, w, 3))
        for _ in range(rng.integers(3, 7)):
            angle, freq = rng.uniform(0, np.pi), rng.uniform(4, 40)
            wave = np.sin(2 * np.pi * freq * (x * np.cos(angle) + y * np.sin(angle)) + rng.uniform(0, 6))
            img += wave[..., None] * rng.uniform(-1, 1, 3)
        img = (img - img.min()) / (np.ptp(img) + 1e-9)
    elif kind == "noise":
        img = np.stack([_noise_field(rng, h, w, rng.uniform(1.6, 2.6)) for _ in range(3)], -1)
        img = 0.5 * img + 0.5 * img.mean(-1, keepdims=True)
    elif kind == "gradient":
        a, b = rng.uniform(0, 1, 3), rng.uniform(0, 1, 3)
        angle = rng.uniform(0, 2 * np.pi)
        t = np.clip((x * np.cos(angle) + y * np.sin(angle)) * 0.7 + 0.5, 0, 1)[..., None]
        img = a * (1 - t) + b * t
    else:
        img = np.ones((h, w, 3)) * rng.uniform(0.6, 1.0, 3)
    return img


def _objects(rng, kind, h, w):
    """What moves between series shots: shapes, or blocks of words."""
    n = int(rng.integers(2, 5))
    if kind == "text":
        return [("text", rng.uniform(0.02, 0.5), rng.uniform(0.05, 0.8), " ".join(rng.choice(WORDS, 2)),
                 str(FONTS[rng.integers(len(FONTS))]), int(rng.integers(14, 30)), tuple(rng.integers(0, 90, 3)))
                for _ in range(n + 2)]
    return [(rng.choice(["ellipse", "rect"]), rng.uniform(0.05, 0.75), rng.uniform(0.05, 0.75),
             rng.uniform(0.12, 0.35), tuple(rng.integers(0, 256, 3))) for _ in range(n)]


@cache
def _font(path, size):
    return ImageFont.truetype(path, size)


def _render(background, objects, shift=(0.0, 0.0), moved=None, rng=None, noise=3.0):
    h, w, _ = background.shape
    dy, dx = int(shift[0] * h), int(shift[1] * w)
    bg = np.roll(background, (dy, dx), axis=(0, 1))
    im = Image.fromarray((bg * 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for i, obj in enumerate(objects):
        oy, ox = moved[i] if moved else (0.0, 0.0)
        if obj[0] == "text":
            _, top, left, words, font, size, colour = obj
            draw.text(((left + ox) * w, (top + oy) * h), words, fill=colour, font=_font(font, size))
        else:
            shape, top, left, size, colour = obj
            box = [(left + ox) * w, (top + oy) * h, (left + ox + size) * w, (top + oy + size * 0.8) * h]
            (draw.ellipse if shape == "ellipse" else draw.rectangle)(box, fill=colour)
    arr = np.asarray(im, dtype=np.float32)
    if rng is not None and noise:
        arr = arr + rng.normal(0, noise, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _encode(im, fmt="JPEG", quality=92, taken=None, orientation=None):
    exif = Image.Exif()
    if taken is not None:
        day, clock = 1 + taken // 86400, f"{taken // 3600 % 24:02d}:{taken // 60 % 60:02d}:{taken % 60:02d}"
        exif[0x8769] = {0x9003: f"2021:06:{day:02d} {clock}"}
    if orientation:
        exif[0x0112] = orientation
    buf = io.BytesIO()
    kwargs = {"quality": quality} if fmt == "JPEG" else {"compress_level": 1}  # lossless either way; level 1 is 5x faster
    if fmt == "JPEG" and (taken is not None or orientation):
        kwargs["exif"] = exif.tobytes()
    im.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _copy(rng, im, how, taken):
    w, h = im.size
    if how == "jpeg":
        return _encode(im, quality=int(rng.integers(45, 70)), taken=taken), taken
    if how == "resize":
        s = rng.uniform(0.35, 0.7)
        return _encode(im.resize((max(16, int(w * s)), max(16, int(h * s))), Image.Resampling.LANCZOS), taken=taken), taken
    if how == "crop":  # each side shortened by up to 10%, shared at random between its two edges
        fx, fy = rng.uniform(0.02, 0.10, 2)
        left, t = rng.uniform(0, fx), rng.uniform(0, fy)
        r, b = fx - left, fy - t
        return _encode(im.crop((int(left * w), int(t * h), int(w * (1 - r)), int(h * (1 - b)))), taken=taken), taken
    if how == "png_no_exif":
        return _encode(im, "PNG"), None
    if how == "exif_rotated":  # pixels turned, the EXIF orientation turns them back for display
        turn, orientation = [(Image.Transpose.ROTATE_90, 6), (Image.Transpose.ROTATE_270, 8),
                             (Image.Transpose.ROTATE_180, 3)][rng.integers(3)]
        return _encode(im.transpose(turn), taken=taken, orientation=orientation), taken
    if how == "recolour":
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.85, 1.15))
        im = ImageEnhance.Color(im).enhance(rng.uniform(0.7, 1.3))
        return _encode(ImageEnhance.Contrast(im).enhance(rng.uniform(0.9, 1.1)), taken=taken), taken
    if how == "screenshot":  # shown on a phone: scaled, flat status and navigation bars
        s = rng.uniform(0.8, 1.0)
        inner = im.resize((int(w * s), int(h * s)))
        shade = int(rng.integers(0, 40))
        size = (inner.width + 2 * int(rng.integers(0, 6)), inner.height + int(rng.integers(30, 60)))
        canvas = Image.new("RGB", size, (shade,) * 3)
        canvas.paste(inner, ((canvas.width - inner.width) // 2, int(rng.integers(15, 30))))
        return _encode(canvas, "PNG"), None
    # combined: a phone app's export: smaller, cropped a little, recompressed, EXIF gone
    left, t, r, b = rng.uniform(0, 0.05, 4)
    im = im.crop((int(left * w), int(t * h), int(w * (1 - r)), int(h * (1 - b))))
    im = im.resize((int(im.width * 0.6), int(im.height * 0.6)), Image.Resampling.BILINEAR)
    return _encode(ImageEnhance.Brightness(im).enhance(rng.uniform(0.92, 1.08)), quality=55), None


def generate(originals=500, series_every=3, distractors=300, seed=24) -> list[Item]:
    """`originals` scenes with their copies; every `series_every`-th scene gets two series shots
    taken 2-20 s after it; `distractors` unrelated images. Kinds take turns."""
    rng = np.random.default_rng(seed)
    items, picture = [], 0
    for scene in range(originals + distractors):
        kind = KINDS[scene % len(KINDS)]
        h, w = [(192, 256), (256, 192), (162, 288), (216, 288)][rng.integers(4)]
        bg, objs = _background(rng, kind, h, w), _objects(rng, kind, h, w)
        taken = int(rng.integers(0, 20 * 86400))
        im = _render(bg, objs, rng=rng)
        if scene >= originals:
            items.append(Item(f"distractor-{scene}", _encode(im, taken=taken), -1, picture, taken=taken))
            picture += 1
            continue
        items.append(Item(f"scene-{scene}", _encode(im, taken=taken), scene, picture, taken=taken, extra={"kind": kind}))
        for how in SAME_TRANSFORMS:
            data, t = _copy(rng, im, how, taken)
            items.append(Item(f"scene-{scene}-{how}", data, scene, picture, how, t, {"kind": kind}))
        picture += 1
        if scene % series_every == 0:
            when = taken
            for shot in range(2):
                when += int(rng.integers(2, 20))
                moved = [tuple(rng.uniform(-0.08, 0.08, 2)) for _ in objs]
                nudge = tuple(rng.uniform(-0.03, 0.03, 2))
                shot_im = _render(bg, objs, shift=nudge, moved=moved, rng=rng)
                items.append(Item(f"scene-{scene}-series{shot}", _encode(shot_im, taken=when), scene, picture,
                                  "series", when, {"kind": kind}))
                picture += 1
    return items


def _score(groups, truth, positives) -> dict:
    tp = fp = 0
    for g in groups:
        for i in range(len(g)):
            for j in range(i + 1, len(g)):
                tp, fp = (tp + 1, fp) if truth(g[i]) == truth(g[j]) else (tp, fp + 1)
    return {"precision": round(tp / max(1, tp + fp), 4), "recall": round(tp / max(1, positives), 4),
            "true_pairs": tp, "false_pairs": fp, "positive_pairs": positives}


def evaluate(items: list[Item], hashes, colours) -> dict:
    """Precision and recall of the app's rules (embeddings.duplicates.pairs and rules, the code the
    full pass runs) on these items: pairs counted inside the groups formed, the "same picture"
    tier against the pictures, "similar" against the scenes; and recall by copy kind (a copy in
    its original's group)."""
    taken = np.array([np.nan if i.taken is None else i.taken for i in items], np.float64)
    found = pairs.find_pairs(np.asarray(hashes, np.int64), np.asarray(colours, np.float32), taken)
    same = rules.same_groups({p: bits for p, (tier, bits) in found.items() if tier == "same"},
                             {k: i.taken for k, i in enumerate(items)})
    similar = rules.star_groups(sorted(found))
    scene = [i.scene if i.scene >= 0 else ("d", k) for k, i in enumerate(items)]
    by_picture, by_scene = collections.Counter(i.picture for i in items), collections.Counter(scene)
    out = {"same": _score(same, lambda k: items[k].picture, sum(n * (n - 1) // 2 for n in by_picture.values())),
           "similar": _score(similar, lambda k: scene[k], sum(n * (n - 1) // 2 for n in by_scene.values()))}
    where = {k: g for g, members in enumerate(same) for k in members}
    originals = {i.picture: k for k, i in enumerate(items) if i.transform == "original"}
    found_by, total = collections.Counter(), collections.Counter()
    for k, i in enumerate(items):
        if i.transform in SAME_TRANSFORMS:
            total[i.transform] += 1
            found_by[i.transform] += where.get(k, -1) == where.get(originals[i.picture], -2)
    out["recall_by_copy"] = {t: round(found_by[t] / total[t], 4) for t in total}
    return out
