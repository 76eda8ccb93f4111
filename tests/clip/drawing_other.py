"""An independent drawer of coloured shapes, used only by tests.

Deliberately shares no code with demo/synth.py: shapes are rasterised from signed distance
functions in pure numpy (analytic edge coverage on a 2x grid, averaged down), colours come from a
fixed list of named shades, and backgrounds are gradients of one random hue, Gaussian noise,
stripes or checkerboards. It proves the demo model does not depend on how its own script draws.
"""
from __future__ import annotations

import numpy as np
from PIL import Image

PALETTE = {
    "red": [(200, 0, 0), (220, 20, 60), (178, 34, 34), (255, 30, 30), (190, 20, 40)],
    "green": [(0, 128, 0), (50, 205, 50), (34, 139, 34), (0, 190, 90), (60, 150, 40)],
    "blue": [(0, 0, 255), (65, 105, 225), (30, 80, 200), (20, 40, 160), (0, 110, 230)],
    "yellow": [(255, 215, 0), (255, 255, 0), (240, 230, 60), (250, 200, 20), (255, 240, 90)],
    "purple": [(128, 0, 128), (148, 0, 211), (120, 60, 180), (160, 32, 240), (100, 30, 140)],
    "orange": [(255, 165, 0), (255, 140, 0), (250, 120, 30), (240, 110, 10), (255, 150, 50)],
    "black": [(0, 0, 0), (30, 30, 30), (20, 20, 40), (40, 35, 30), (10, 10, 10)],
    "white": [(255, 255, 255), (240, 240, 240), (250, 250, 235), (235, 240, 250), (248, 248, 248)],
}
SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")
SIZES = ("small", "large")


def _box(px, py, bx, by):
    qx, qy = np.abs(px) - bx, np.abs(py) - by
    outside = np.hypot(np.maximum(qx, 0), np.maximum(qy, 0))
    return outside + np.minimum(np.maximum(qx, qy), 0)


def _polygon_sdf(px, py, verts):
    """Signed distance to a closed polygon (negative inside), after Inigo Quilez."""
    vx, vy = verts[:, 0], verts[:, 1]
    d = (px - vx[0]) ** 2 + (py - vy[0]) ** 2
    sign = np.ones_like(px)
    n = len(verts)
    j = n - 1
    for i in range(n):
        ex, ey = vx[j] - vx[i], vy[j] - vy[i]
        wx, wy = px - vx[i], py - vy[i]
        t = np.clip((wx * ex + wy * ey) / (ex * ex + ey * ey), 0, 1)
        bx, by = wx - ex * t, wy - ey * t
        d = np.minimum(d, bx * bx + by * by)
        c1 = py >= vy[i]
        c2 = py < vy[j]
        c3 = ex * wy > ey * wx
        flip = (c1 & c2 & c3) | (~c1 & ~c2 & ~c3)
        sign = np.where(flip, -sign, sign)
        j = i
    return sign * np.sqrt(d)


def _sdf(shape, px, py, r, rng):
    if shape == "circle":
        return np.hypot(px, py) - r
    if shape == "ring":
        thick = r * rng.uniform(0.14, 0.22)
        return np.abs(np.hypot(px, py) - (r - thick)) - thick
    if shape == "square":
        h = r * 0.78
        return _box(px, py, h, h)
    if shape == "cross":
        w = r * rng.uniform(0.22, 0.32)
        return np.minimum(_box(px, py, r, w), _box(px, py, w, r))
    if shape == "triangle":
        a = np.pi / 2 + np.arange(3) * 2 * np.pi / 3
        verts = np.stack([r * 1.1 * np.cos(a), r * 1.1 * np.sin(a)], 1)
        return _polygon_sdf(px, py, verts)
    if shape == "star":
        k = np.arange(10)
        rad = np.where(k % 2 == 0, r * 1.1, r * 1.1 * rng.uniform(0.42, 0.55))
        a = np.pi / 2 + k * np.pi / 5
        verts = np.stack([rad * np.cos(a), rad * np.sin(a)], 1)
        return _polygon_sdf(px, py, verts)
    raise ValueError(shape)


def _hue_rgb(h, s, v):
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, t = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, t, p), (q, v, p), (p, v, t), (p, q, v), (t, p, v), (v, p, q)][i]) * 255


def _background(rng, n, fg):
    def colour():
        for _ in range(500):
            c = _hue_rgb(rng.random(), rng.random(), rng.uniform(0.05, 1.0))
            if np.linalg.norm(c - fg) > 120:
                return c
        return np.full(3, 255.0 - fg.mean())

    yy, xx = np.mgrid[0:n, 0:n].astype(np.float64) / n
    kind = rng.integers(5)
    c1 = colour()
    if kind == 0:  # plain
        return np.broadcast_to(c1, (n, n, 3)).copy()
    if kind == 1:  # gradient within one random hue: vary brightness along a random direction
        h, s = rng.random(), rng.uniform(0.2, 1)
        for _ in range(500):
            v1, v2 = sorted(rng.uniform(0.05, 1, 2))
            e1, e2 = _hue_rgb(h, s, v1), _hue_rgb(h, s, v2)
            mids = [e1 + (e2 - e1) * f for f in np.linspace(0, 1, 6)]
            if min(np.linalg.norm(m - fg) for m in mids) > 110:
                break
            h, s = rng.random(), rng.uniform(0.2, 1)
        ang = rng.uniform(0, 2 * np.pi)
        t = xx * np.cos(ang) + yy * np.sin(ang)
        t = (t - t.min()) / (t.max() - t.min())
        return e1 + (e2 - e1) * t[..., None]
    if kind == 2:  # Gaussian noise
        return np.clip(c1 + rng.normal(0, rng.uniform(5, 25), (n, n, 3)), 0, 255)
    c2 = colour()
    c2 = c1 + (c2 - c1) * rng.uniform(0.25, 0.5)
    if kind == 3:  # stripes
        period = rng.uniform(0.05, 0.15)
        ang = rng.uniform(0, np.pi)
        t = ((xx * np.cos(ang) + yy * np.sin(ang)) / period) % 1.0 < 0.5
    else:  # checkerboard
        period = rng.uniform(0.06, 0.16)
        t = ((np.floor(xx / period) + np.floor(yy / period)) % 2) == 1
    return np.where(t[..., None], c2, c1)


def draw(rng: np.random.Generator, colour: str, shape: str, size: str, image_size: int = 224) -> Image.Image:
    n = image_size
    fg = np.array(PALETTE[colour][rng.integers(len(PALETTE[colour]))], dtype=np.float64)
    bg = _background(rng, n, fg)
    r = (rng.uniform(0.10, 0.15) if size == "small" else rng.uniform(0.28, 0.38)) * n
    margin = r * 1.15
    cx, cy = rng.uniform(margin, n - margin, 2)
    rot = rng.uniform(0, 2 * np.pi)
    ss = 2
    # Rasterise only the shape's bounding box.
    x0, x1 = max(int(cx - margin) - 2, 0), min(int(cx + margin) + 3, n)
    y0, y1 = max(int(cy - margin) - 2, 0), min(int(cy + margin) + 3, n)
    gx = x0 + (np.arange((x1 - x0) * ss) + 0.5) / ss
    gy = y0 + (np.arange((y1 - y0) * ss) + 0.5) / ss
    yy, xx = np.meshgrid(gy, gx, indexing="ij")
    dx, dy = xx - cx, yy - cy
    px = dx * np.cos(rot) + dy * np.sin(rot)
    py = -dx * np.sin(rot) + dy * np.cos(rot)
    d = _sdf(shape, px, py, r, rng)
    cover = np.clip(0.5 - d * ss, 0, 1)  # analytic coverage of each sub-pixel
    cover = cover.reshape(y1 - y0, ss, x1 - x0, ss).mean(axis=(1, 3))
    full = np.zeros((n, n, 1))
    full[y0:y1, x0:x1, 0] = cover
    img = bg * (1 - full) + fg * full
    return Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")


def gallery(per_combo: int, seed: int, image_size: int = 224):
    """colour x shape x size combinations, `per_combo` images each: [(image, attrs), ...]."""
    rng = np.random.default_rng(seed)
    out = []
    for colour in PALETTE:
        for shape in SHAPES:
            for size in SIZES:
                for _ in range(per_combo):
                    img = draw(rng, colour, shape, size, image_size)
                    out.append((img, {"colour": colour, "shape": shape, "size": size}))
    return out
