"""Procedurally drawn images of coloured shapes, with captions, and the demo gallery's file names.

Used to train the bundled demo CLIP model (demo/train.py) and to make the demo gallery
(`manage.py demo`). Pure numpy + Pillow: importable without Django or torch.

Each image holds one shape (circle, square, triangle, star, cross, ring) of one named colour,
drawn with a random rotation, position and scale within its size class, a random shade of the
colour and anti-aliased edges, on a background picked at random among a plain colour of any hue,
a gradient, noise and a simple texture; the background always contrasts with the shape.
"""
from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "green": (40, 165, 60),
    "blue": (35, 75, 225),
    "yellow": (245, 220, 35),
    "purple": (135, 45, 175),
    "orange": (245, 135, 25),
    "black": (15, 15, 15),
    "white": (245, 245, 245),
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
SIZES = ("small", "large")
BACKGROUNDS = ("plain", "gradient", "noise", "texture")

# Shade ranges in HSV (hue as a fraction of the colour wheel, may wrap below 0).
_SHADES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "red": ((-0.03, 0.02), (0.78, 1.0), (0.55, 1.0)),
    "orange": ((0.055, 0.095), (0.80, 1.0), (0.88, 1.0)),
    "yellow": ((0.130, 0.170), (0.70, 1.0), (0.85, 1.0)),
    "green": ((0.250, 0.420), (0.55, 1.0), (0.40, 0.95)),
    "blue": ((0.560, 0.670), (0.60, 1.0), (0.45, 1.0)),
    "purple": ((0.740, 0.840), (0.45, 1.0), (0.35, 0.90)),
    "black": ((0.0, 1.0), (0.0, 1.0), (0.0, 0.15)),
    "white": ((0.0, 1.0), (0.0, 0.07), (0.92, 1.0)),
}

# Circumscribed radius as a fraction of the image side, per size class.
_RADIUS = {"small": (0.09, 0.16), "large": (0.27, 0.42)}
# Per-shape factor so that shapes of one size class look about equally big.
_SHAPE_SCALE = {"circle": 0.85, "ring": 0.9, "square": 1.0, "triangle": 1.08, "star": 1.05, "cross": 1.0}
_MIN_CONTRAST = 110.0  # Euclidean RGB distance between the shape and every background colour


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32) * 255.0


def shade(rng: np.random.Generator, colour: str) -> np.ndarray:
    """A random shade of a named colour, as float32 RGB in 0..255."""
    (h0, h1), (s0, s1), (v0, v1) = _SHADES[colour]
    if rng.random() < 0.15:  # sometimes the textbook colour itself, slightly jittered
        base = np.array(COLOURS[colour], dtype=np.float32)
        return np.clip(base + rng.normal(0, 6, 3), 0, 255).astype(np.float32)
    return _hsv(rng.uniform(h0, h1), rng.uniform(s0, s1), rng.uniform(v0, v1))


def _random_colour(rng: np.random.Generator) -> np.ndarray:
    """Any colour at all: any hue, saturation and brightness."""
    if rng.random() < 0.25:  # greys are common backgrounds
        g = rng.uniform(0, 255)
        return np.clip(np.array([g, g, g]) + rng.normal(0, 5, 3), 0, 255).astype(np.float32)
    return _hsv(rng.random(), rng.uniform(0, 1) ** 0.7, rng.uniform(0.05, 1))


def _far_colour(rng: np.random.Generator, avoid: np.ndarray, min_dist: float) -> np.ndarray:
    for _ in range(200):
        c = _random_colour(rng)
        if np.linalg.norm(c - avoid) >= min_dist:
            return c
    # Fallback: push away from the shape's brightness.
    return np.full(3, 20.0 if avoid.mean() > 128 else 235.0, dtype=np.float32)


_GRIDS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    if n not in _GRIDS:
        c = (np.arange(n, dtype=np.float32) + 0.5) / n
        _GRIDS[n] = (c[None, :].repeat(n, 0), c[:, None].repeat(n, 1))
    return _GRIDS[n]


def _background(rng: np.random.Generator, n: int, fg: np.ndarray) -> tuple[np.ndarray, str]:
    """An n x n x 3 float32 background whose colours all keep away from `fg`."""
    kind = BACKGROUNDS[rng.integers(len(BACKGROUNDS))]
    a = _far_colour(rng, fg, _MIN_CONTRAST)
    x, y = _grid(n)
    if kind == "plain":
        img = np.broadcast_to(a, (n, n, 3)).copy()
    elif kind == "gradient":
        b = _far_colour(rng, fg, _MIN_CONTRAST)
        if rng.random() < 0.7:
            th = rng.uniform(0, 2 * math.pi)
            t = (x - 0.5) * math.cos(th) + (y - 0.5) * math.sin(th)
            t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
        else:
            cx, cy = rng.uniform(0.0, 1.0, 2)
            t = np.sqrt((x - cx) ** 2 + (y - cy) ** 2)
            t = t / max(float(t.max()), 1e-6)
        # Interpolate in a way that cannot pass through the shape colour: keep only the
        # endpoint whose interpolants stay far enough (checked at a few points).
        mids = [a + (b - a) * f for f in (0.25, 0.5, 0.75)]
        if min(np.linalg.norm(m - fg) for m in mids) < _MIN_CONTRAST * 0.8:
            b = a + (b - a) * 0.2
        img = a + (b - a) * t[..., None]
    elif kind == "noise":
        sigma = rng.uniform(8, 35)
        if rng.random() < 0.5:  # fine Gaussian noise
            img = a + rng.normal(0, sigma, (n, n, 1 if rng.random() < 0.5 else 3)).astype(np.float32)
        else:  # blotchy low-frequency noise
            cells = int(rng.integers(3, 12))
            small = rng.normal(0, sigma * 1.5, (cells, cells, 3)).astype(np.float32)
            up = np.asarray(
                Image.fromarray(np.clip(small + 128, 0, 255).astype(np.uint8)).resize((n, n), Image.BICUBIC),
                dtype=np.float32,
            ) - 128
            img = a + up
        img = np.clip(img, 0, 255)
        # Noise may drift towards the shape colour: shrink it until it keeps away.
        if np.linalg.norm(a - fg) - 2.5 * sigma < _MIN_CONTRAST * 0.7:
            img = a + (img - a) * 0.4
    else:  # texture: stripes, checker, dots or grid in two colours of modest contrast
        b = _far_colour(rng, fg, _MIN_CONTRAST)
        mix = rng.uniform(0.2, 0.6)
        b = a + (b - a) * mix
        period = rng.uniform(0.04, 0.2)
        sub = rng.integers(4)
        th = rng.uniform(0, math.pi)
        u = x * math.cos(th) + y * math.sin(th)
        v = -x * math.sin(th) + y * math.cos(th)
        if sub == 0:
            t = 0.5 + 0.5 * np.sin(2 * math.pi * u / period)
        elif sub == 1:
            t = ((np.floor(u / period) + np.floor(v / period)) % 2).astype(np.float32)
        elif sub == 2:
            fu = (u / period) % 1.0 - 0.5
            fv = (v / period) % 1.0 - 0.5
            t = (fu * fu + fv * fv < rng.uniform(0.03, 0.12)).astype(np.float32)
        else:
            w = rng.uniform(0.08, 0.25)
            t = (((u / period) % 1.0 < w) | ((v / period) % 1.0 < w)).astype(np.float32)
        img = a + (b - a) * t[..., None]
    return img.astype(np.float32), kind


def _polygon(shape: str, rng: np.random.Generator, cx: float, cy: float, r: float, rot: float):
    def pts(radii, angles):
        return [(cx + rr * math.cos(aa + rot), cy + rr * math.sin(aa + rot))
                for rr, aa in zip(radii, angles, strict=True)]

    if shape == "square":
        return pts([r] * 4, [math.pi / 4 + k * math.pi / 2 for k in range(4)])
    if shape == "triangle":
        jit = rng.uniform(-0.12, 0.12, 3)
        return pts([r] * 3, [-math.pi / 2 + k * 2 * math.pi / 3 + jit[k] for k in range(3)])
    if shape == "star":
        n = 5 if rng.random() < 0.8 else 6
        inner = rng.uniform(0.38, 0.52)
        radii = [r if k % 2 == 0 else r * inner for k in range(2 * n)]
        return pts(radii, [-math.pi / 2 + k * math.pi / n for k in range(2 * n)])
    if shape == "cross":
        w = r * rng.uniform(0.28, 0.42)  # half arm width
        local = [(w, r), (w, w), (r, w), (r, -w), (w, -w), (w, -r),
                 (-w, -r), (-w, -w), (-r, -w), (-r, w), (-w, w), (-w, r)]
        c, s = math.cos(rot), math.sin(rot)
        return [(cx + px * c - py * s, cy + px * s + py * c) for px, py in local]
    raise ValueError(shape)


def _mask(rng: np.random.Generator, shape: str, size: str, n: int) -> np.ndarray:
    """Anti-aliased coverage mask (n x n float32 in 0..1) of one shape."""
    lo, hi = _RADIUS[size]
    r = rng.uniform(lo, hi) * _SHAPE_SCALE[shape] * n
    margin = r * 1.02 + 1
    cx = rng.uniform(margin, n - margin) if n > 2 * margin else n / 2
    cy = rng.uniform(margin, n - margin) if n > 2 * margin else n / 2
    rot = rng.uniform(0, 2 * math.pi)
    ss = int(rng.choice((1, 2, 3, 4), p=(0.1, 0.3, 0.3, 0.3)))
    # Draw only the shape's bounding box at ss x resolution, then box-filter down.
    x0, y0 = max(int(cx - margin) - 1, 0), max(int(cy - margin) - 1, 0)
    x1, y1 = min(int(math.ceil(cx + margin)) + 1, n), min(int(math.ceil(cy + margin)) + 1, n)
    w, h = x1 - x0, y1 - y0
    im = Image.new("L", (w * ss, h * ss), 0)
    d = ImageDraw.Draw(im)
    ccx, ccy, rr = (cx - x0) * ss, (cy - y0) * ss, r * ss
    if shape == "circle":
        d.ellipse((ccx - rr, ccy - rr, ccx + rr, ccy + rr), fill=255)
    elif shape == "ring":
        ri = rr * rng.uniform(0.5, 0.72)
        d.ellipse((ccx - rr, ccy - rr, ccx + rr, ccy + rr), fill=255)
        d.ellipse((ccx - ri, ccy - ri, ccx + ri, ccy + ri), fill=0)
    else:
        d.polygon(_polygon(shape, rng, ccx, ccy, rr, rot), fill=255)
    if ss > 1:
        im = im.resize((w, h), Image.BOX)
    out = np.zeros((n, n), dtype=np.float32)
    out[y0:y1, x0:x1] = np.asarray(im, dtype=np.float32) / 255.0
    return out


def draw_scene(rng: np.random.Generator, colour: str, shape: str, size: str, image_size: int = 224, with_mask=False):
    if colour not in COLOURS or shape not in SHAPES or size not in SIZES:
        raise ValueError(f"unknown attribute: {colour!r} {shape!r} {size!r}")
    n = int(image_size)
    fg = shade(rng, colour)
    bg, kind = _background(rng, n, fg)
    a = _mask(rng, shape, size, n)[..., None]
    fill = np.broadcast_to(fg, (n, n, 3))
    if rng.random() < 0.3:  # gentle lighting across the shape
        x, y = _grid(n)
        th = rng.uniform(0, 2 * math.pi)
        light = 1.0 + rng.uniform(0.03, 0.1) * ((x - 0.5) * math.cos(th) + (y - 0.5) * math.sin(th))
        fill = np.clip(fill * light[..., None], 0, 255)
    img = bg * (1.0 - a) + fill * a
    if rng.random() < 0.2:  # a little sensor noise over everything
        img = img + rng.normal(0, rng.uniform(2, 8), (n, n, 1)).astype(np.float32)
    img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
    if with_mask:  # the shape's coverage, for training-time supervision
        return Image.fromarray(img, "RGB"), kind, a[..., 0]
    return Image.fromarray(img, "RGB"), kind


def draw_shape_image(
    rng: np.random.Generator, colour: str, shape: str, size: str, image_size: int = 224
) -> Image.Image:
    """One RGB image of a `size` `colour` `shape` on a random contrasting background."""
    return draw_scene(rng, colour, shape, size, image_size)[0]


_BG_WORDS = {
    "plain": ("plain", "plain", "solid", "simple", "coloured", "colored", "flat"),
    "gradient": ("gradient", "gradient", "smooth", "shaded", "coloured", "colored"),
    "noise": ("noisy", "noisy", "grainy", "speckled", "mottled"),
    "texture": ("textured", "textured", "patterned", "striped", "busy"),
}
_NOUNS = ("shape", "shape", "object", "thing", "figure", "symbol", "icon", "form")
_SHAPE_SYNONYMS = {
    "circle": ("circle", "circle", "circle", "disc", "dot", "round shape"),
    "square": ("square", "square", "square", "box", "block"),
    "triangle": ("triangle",),
    "star": ("star",),
    "cross": ("cross", "cross", "cross", "plus sign", "plus"),
    "ring": ("ring", "ring", "ring", "donut", "hoop", "circle outline"),
}
_SIZE_SYNONYMS = {
    "small": ("small", "small", "small", "little", "tiny"),
    "large": ("large", "large", "large", "big", "huge"),
}


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


def _article(word: str) -> str:
    return "an" if word[:1] in "aeiou" else "a"


def caption_with_attributes(
    rng: np.random.Generator, colour: str, shape: str, size: str, background: str | None = None
) -> tuple[str, dict[str, str | None]]:
    """A varied caption plus which attributes it actually states (None = left out)."""
    while True:
        use_c = rng.random() < 0.85
        use_s = rng.random() < 0.85
        use_z = rng.random() < 0.45
        if use_c or use_s or use_z:
            break
    c = colour if use_c else None
    s = shape if use_s else None
    z = size if use_z else None
    cw = None
    if c:
        scarlet = colour == "red" and rng.random() < 0.1  # now and then "scarlet" for red
        cw = _pick(rng, ("red", "red", "red", "scarlet")) if scarlet else colour
    sw = _pick(rng, _SHAPE_SYNONYMS[shape]) if s else None
    zw = _pick(rng, _SIZE_SYNONYMS[size]) if z else None

    r = rng.random()
    if r < 0.07 and sum(x is not None for x in (c, s, z)) == 1:
        text = cw or sw or zw  # a single bare word: "red", "star", "small"
        return text, {"colour": c, "shape": s, "size": z}
    words = [w for w in (zw, cw) if w]
    if rng.random() < 0.1 and len(words) == 2:
        words.reverse()
    noun = sw or _pick(rng, _NOUNS)
    if cw and sw and rng.random() < 0.12:  # "a star in red", "a red coloured star" ...
        phrase_variants = [
            f"{' '.join([zw] if zw else [])} {sw} in {cw}".strip(),
            f"{' '.join([zw] if zw else [])} {cw} coloured {sw}".strip(),
            f"{' '.join([zw] if zw else [])} {cw} colored {sw}".strip(),
            f"{' '.join([zw] if zw else [])} {sw} that is {cw}".strip(),
            f"{' '.join([zw] if zw else [])} {sw}, {cw}".strip(),
        ]
        phrase = _pick(rng, phrase_variants)
    else:
        phrase = " ".join(words + [noun])
    art = _article(phrase) if rng.random() < 0.85 else "a"
    bg = None
    if background is not None and rng.random() < 0.2:
        bg = _pick(rng, _BG_WORDS[background])
    elif rng.random() < 0.06:
        bg = _pick(rng, ("coloured", "colored", "simple", ""))
    templates = (
        "{a} {p}", "{a} {p}", "{a} {p}", "{p}", "{p}", "the {p}", "one {p}",
        "a photo of {a} {p}", "a photo of {a} {p}", "a picture of {a} {p}", "an image of {a} {p}",
        "a drawing of {a} {p}", "an illustration of {a} {p}", "a rendering of {a} {p}",
        "there is {a} {p}", "{a} {p} in the picture", "{a} {p} in the image",
        "a close-up photo of {a} {p}", "a simple {p}", "{a} {p}.", "{p} shape",
    )
    t = _pick(rng, templates)
    if t == "{p} shape" and not sw:
        t = "{a} {p}"
    if t == "a simple {p}":
        text = f"a simple {phrase}"
    else:
        text = t.format(a=art, p=phrase)
    if bg is not None:
        text = f"{text.rstrip('.')} on {_article(bg) if bg else 'a'} {bg + ' ' if bg else ''}background"
    if rng.random() < 0.03:
        text = text.capitalize()
    return " ".join(text.split()), {"colour": c, "shape": s, "size": z}


def gallery(n: int, seed: int, image_size: int = 224) -> list[tuple[Image.Image, dict]]:
    """`n` captioned images, balanced over colour x shape (and size), reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    colours = list(COLOURS)
    out = []
    for i in range(int(n)):
        colour = colours[i % len(colours)]
        shape = SHAPES[(i // len(colours)) % len(SHAPES)]
        size = SIZES[(i // (len(colours) * len(SHAPES))) % len(SIZES)]
        img, kind = draw_scene(rng, colour, shape, size, image_size)
        caption = caption_with_attributes(rng, colour, shape, size, kind)[0]
        out.append((img, {"colour": colour, "shape": shape, "size": size, "caption": caption}))
    return out


def demo_filename(i: int, meta: dict) -> str:
    """The file name of the `i`-th demo gallery image, `meta` its attributes (as `gallery` gives them):
    "demo-0007-small-red-star.jpg"."""
    return f"demo-{i:04d}-{meta['size']}-{meta['colour']}-{meta['shape']}.jpg"


def neutral_filename(i: int) -> str:
    """The name `make demo` stores the `i`-th gallery image under: "demo-0007.jpg". It says nothing of
    the picture, so a demo hit is found by what the model sees, not by its name on the keyword side."""
    return f"demo-{i:04d}.jpg"


def parse_demo_filename(name: str) -> dict[str, str] | None:
    """The attributes (size, colour, shape) a `demo_filename` name states, or None for any other name."""
    parts = name.removesuffix(".jpg").split("-") if name.endswith(".jpg") else []
    if len(parts) != 5 or parts[0] != "demo" or not parts[1].isdigit():
        return None
    size, colour, shape = parts[2:]
    if size not in SIZES or colour not in COLOURS or shape not in SHAPES:
        return None
    return {"size": size, "colour": colour, "shape": shape}
