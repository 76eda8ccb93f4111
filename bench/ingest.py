"""Ingest benchmark: JPEG files -> embeddings -> index, naive pipeline beside ours, same data, same run.

Model: the ViT-B/32 architecture built from its config (bench/vitb32.py; random weights compute
exactly as the real ones). Images: synthetic photo-like JPEGs (smooth gradients, shapes, sensor-like
noise, quality 90) at 12 MP (4000x3000) and 0.3 MP (640x480), made once under var/bench/images/.

naive: per batch of 32, `Image.open(p).convert("RGB")` (full decode), CLIPImageProcessor
       (CLIPImageProcessorPil here, no torchvision), fp32 `get_image_features(...).pooler_output`,
       L2 normalisation, `faiss.IndexFlatIP.add`; one thread of Python, torch's own threads.
ours:  `CLIPService(model_name=<dir>, precision=...).embed_images(paths)` (JPEG draft decoding,
       decode threads overlapping the model) then `build_faiss` (the app's index for that size).

    .venv/bin/python bench/ingest.py [--full] [--n12 8] [--n03 64] [--no-bf16]
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import vitb32  # noqa: E402

IMAGES_DIR = common.BENCH_DIR / "images"
SIZES = {"12MP": (4000, 3000), "0.3MP": (640, 480)}


def make_image(path: Path, size: tuple[int, int], seed: int) -> None:
    """A photo-like JPEG: low-frequency colour field + shapes, upsampled smooth, plus noise."""
    import numpy as np
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    w, h = size
    sw, sh = max(w // 8, 64), max(h // 8, 48)
    yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
    base = np.zeros((sh, sw, 3), np.float32)
    for c in range(3):
        a, b, ph = rng.uniform(-1, 1, 3)
        base[..., c] = 128 + 60 * np.sin(a * xx / sw * 6 + ph) * np.cos(b * yy / sh * 6) + rng.uniform(-40, 40)
    im = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(8, 20))):
        x0, y0 = rng.integers(0, sw), rng.integers(0, sh)
        x1, y1 = x0 + rng.integers(4, sw // 2), y0 + rng.integers(4, sh // 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    im = im.filter(ImageFilter.GaussianBlur(1.0)).resize((w, h), Image.Resampling.BICUBIC)
    arr = np.asarray(im).astype(np.int16)
    arr += rng.normal(0, 4.0, (h, w, 1)).astype(np.int16) + rng.normal(0, 2.0, (h, w, 3)).astype(np.int16)
    Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=90)


def ensure_images(label: str, count: int) -> list[Path]:
    folder = IMAGES_DIR / label
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        p = folder / f"img_{i:04d}.jpg"
        if not p.exists():
            tmp = p.with_suffix(".tmp")
            make_image(tmp, SIZES[label], seed=i + (0 if label == "12MP" else 100_000))
            os.replace(tmp, p)
        paths.append(p)
    return paths


# ---- pipelines -------------------------------------------------------------------------------
class Naive:
    def __init__(self, model_dir):
        import torch
        from transformers import CLIPImageProcessorPil, CLIPModel

        self.torch = torch
        self.model = CLIPModel.from_pretrained(model_dir, dtype=torch.float32).eval()
        self.processor = CLIPImageProcessorPil.from_pretrained(model_dir)
        with torch.inference_mode():  # first-call overhead out of the timing, as for ours
            self.model.get_image_features(pixel_values=torch.zeros(1, 3, 224, 224))

    def run(self, paths, batch=32):
        import faiss
        import numpy as np
        from PIL import Image

        torch = self.torch
        index = faiss.IndexFlatIP(512)
        out = []
        for s in range(0, len(paths), batch):
            images = [Image.open(p).convert("RGB") for p in paths[s:s + batch]]
            pixels = self.processor(images=images, return_tensors="pt")["pixel_values"]
            with torch.inference_mode():
                feats = self.model.get_image_features(pixel_values=pixels).pooler_output
            emb = torch.nn.functional.normalize(feats, dim=-1).numpy().astype(np.float32)
            index.add(emb)
            out.append(emb)
        return np.concatenate(out), index


class Ours:
    def __init__(self, model_dir, precision, engine="auto"):
        from embeddings.clip.service import CLIPService

        self.service = CLIPService(model_name=str(model_dir), precision=precision, engine=engine)
        self.service.warmup()
        self.precision = self.service.load().precision

    def run(self, paths):
        import numpy as np

        from embeddings.index.build import wanted_kind as kind_for
        from embeddings.index.kinds import build_faiss

        emb = self.service.embed_images([str(p) for p in paths])
        ids = np.arange(1, len(paths) + 1, dtype=np.int64)
        index = build_faiss(emb, ids, kind_for(len(ids)), emb.shape[1])
        return emb, index


def timed(fn, *args):
    t = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t, out


# ---- breakdown (where the time goes) ---------------------------------------------------------
def breakdown(model_dir, paths_by_label, naive, ours_by_prec) -> list[list]:
    """Per-stage costs, single-threaded: decode+preprocess per image, model img/s at batch 32."""
    import numpy as np
    import torch
    from PIL import Image

    from embeddings.clip.preprocessing import open_image

    rows = []
    pre = next(iter(ours_by_prec.values())).service.load().preprocessor
    for label, paths in paths_by_label.items():
        sample = paths[: min(8, len(paths))]
        t = time.perf_counter()
        for p in sample:
            naive.processor(images=[Image.open(p).convert("RGB")], return_tensors="pt")
        t_naive = (time.perf_counter() - t) / len(sample) * 1000
        t = time.perf_counter()
        buf = np.empty((3, 224, 224), np.float32)
        for p in sample:
            pre.to_array(pre.resize_crop(open_image(str(p), draft=True, target=pre.target)), buf)
        t_ours = (time.perf_counter() - t) / len(sample) * 1000
        rows.append([f"decode+preprocess {label} (ms/image, 1 thread)", t_naive, t_ours])
    pixels = torch.randn(32, 3, 224, 224)

    def tower(model):
        with torch.inference_mode():
            model.get_image_features(pixel_values=pixels[:4].to(model.dtype))
            t = time.perf_counter()
            model.get_image_features(pixel_values=pixels.to(model.dtype))
        return 32 / (time.perf_counter() - t)

    def tower_of(lm):  # any engine: through the loaded model's own image_features
        lm.image_features(pixels[:4].numpy())
        t = time.perf_counter()
        lm.image_features(pixels.numpy())
        return 32 / (time.perf_counter() - t)

    fp32 = tower(naive.model)
    for prec, o in ours_by_prec.items():
        lm = o.service.load()
        rows.append([f"image tower, batch 32, img/s (ours: {prec} -> {lm.engine} {lm.precision})", fp32,
                     tower_of(lm)])
    return rows


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="64 12 MP and 512 0.3 MP images")
    ap.add_argument("--n12", type=int, help="number of 12 MP images (default 8, --full 64)")
    ap.add_argument("--n03", type=int, help="number of 0.3 MP images (default 64, --full 512)")
    ap.add_argument("--no-bf16", action="store_true", help="skip the forced-bf16 row")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = ap.parse_args(argv)
    n12 = args.n12 or (64 if args.full else 8)
    n03 = args.n03 or (512 if args.full else 64)

    model_dir = vitb32.ensure()
    common.setup_django(model_dir)
    paths_by_label = {"12MP": ensure_images("12MP", n12), "0.3MP": ensure_images("0.3MP", n03)}

    import numpy as np

    naive = Naive(model_dir)
    # int8: the image tower quantised (CLIP_PRECISION=int8), the shortcut for CPUs without native bf16.
    ours = {"auto": Ours(model_dir, "auto"), "int8": Ours(model_dir, "int8")}
    if not args.no_bf16:
        ours["bf16"] = Ours(model_dir, "bf16")

    load = loadavg_before = common.loadavg() if args.no_wait else common.wait_for_quiet()
    rows, notes = [], []
    for label, paths in paths_by_label.items():
        t_naive, (e_naive, _) = timed(naive.run, paths)
        if len(e_naive) > 1:
            g = e_naive @ e_naive.T
            other = float((g.sum() - np.trace(g)) / (len(g) * (len(g) - 1)))
            notes.append(f"for scale, the mean cosine between the naive embeddings of different {label} images "
                         f"is {other:.4f} (random weights)")
        rows.append([f"naive fp32 ({label})", len(paths), t_naive, len(paths) / t_naive, 1.0, 1.0])
        for prec, o in ours.items():
            t, (e, _) = timed(o.run, paths)
            cos = float(np.mean(np.sum(e * e_naive, axis=1)))
            name = f"ours {prec} -> {o.precision}" + (" (emulated)" if o.precision == "bf16" and prec == "bf16" else "")
            rows.append([f"{name} ({label})", len(paths), t, len(paths) / t, t_naive / t, f"{cos:.5f}"])
    load_after = common.loadavg()
    bd = breakdown(model_dir, paths_by_label, naive, ours)
    headers = ["pipeline", "images", "seconds", "images/s", "speed-up vs naive", "mean cosine to naive"]
    out = {
        "title": "Ingest (decode -> embeddings -> index), ViT-B/32 architecture",
        "headers": headers,
        "rows": rows,
        "breakdown_headers": ["stage", "naive", "ours"],
        "breakdown": bd,
        "load": (loadavg_before, load_after),
        "note": "; ".join(notes) + "." if notes else "",
    }
    print(f"\n## {out['title']}\n(load avg before {load:.2f}, after {load_after:.2f})\n")
    print(common.table(headers, rows))
    print("\n" + out["note"])
    print("\nWhere the time goes:\n")
    print(common.table(out["breakdown_headers"], bd))
    return out


if __name__ == "__main__":
    main()
