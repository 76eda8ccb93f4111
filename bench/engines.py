"""Engines x precisions on this CPU: image tower img/s, text query latency, ingest end to end against
the naive pipeline (bench/ingest.py's, same images, same run), and the CPU kind it ran on.

Model: the ViT-B/32 architecture with random weights and the real CLIP tokenizer (bench/vitb32.py).
Rows: torch fp32 / int8 (/ bf16 with --bf16), ONNX Runtime fp32 / int8, and `auto` (what the app
runs by default: CLIP_ENGINE=auto, CLIP_PRECISION=auto). The ONNX exports are cached under
var/bench/data/onnx (the first run exports and quantises: about a minute more).

    .venv/bin/python bench/engines.py [--n12 8] [--n03 64] [--bf16] [--no-wait]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import ingest  # noqa: E402
import vitb32  # noqa: E402

QUERY = "a photo of a red car"  # 8 tokens with the start and end tokens


def tower_rate(lm, batch=32) -> float:
    import numpy as np

    pixels = np.random.default_rng(0).standard_normal((batch, 3, *lm.preprocessor.crop)).astype(np.float32)
    lm.image_features(pixels[:4])  # first-call overhead out of the timing
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        lm.image_features(pixels)
        best = min(best, time.perf_counter() - t)
    return batch / best


def text_ms(lm, runs=30) -> float:
    lm.text_features([QUERY])
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        lm.text_features([QUERY])
        times.append((time.perf_counter() - t) * 1000)
    return common.percentile(times, 50)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n12", type=int, default=8, help="number of 12 MP images")
    ap.add_argument("--n03", type=int, default=64, help="number of 0.3 MP images")
    ap.add_argument("--bf16", action="store_true", help="add torch bf16 (slow where bf16 is emulated)")
    ap.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    args = ap.parse_args(argv)

    model_dir = vitb32.ensure()
    common.setup_django(model_dir)
    paths = {"12MP": ingest.ensure_images("12MP", args.n12), "0.3MP": ingest.ensure_images("0.3MP", args.n03)}
    import numpy as np

    from embeddings.clip.device import cpu_kind

    configs = [("torch", "fp32"), ("torch", "int8"), ("onnx", "fp32"), ("onnx", "int8"), ("auto", "auto")]
    if args.bf16:
        configs.insert(2, ("torch", "bf16"))
    naive = ingest.Naive(model_dir)
    ours = {c: ingest.Ours(model_dir, c[1], engine=c[0]) for c in configs}  # loads and exports before timing
    load = common.loadavg() if args.no_wait else common.wait_for_quiet()
    naive_s, naive_emb = {}, {}
    for label, p in paths.items():
        naive_s[label], (naive_emb[label], _) = ingest.timed(naive.run, p)
    with naive.torch.inference_mode():
        pixels = naive.torch.randn(32, 3, 224, 224)
        naive.model.get_image_features(pixel_values=pixels[:4])
        t = time.perf_counter()
        naive.model.get_image_features(pixel_values=pixels)
        naive_rate = 32 / (time.perf_counter() - t)
    rows = [["naive (torch fp32, full decode, CLIPProcessor, text padded to 77)", naive_rate, None,
             *(f"{len(paths[k]) / naive_s[k]:.2f} img/s" for k in paths), "1"]]
    for (engine, precision), o in ours.items():
        lm = o.service.load()
        cells = []
        cosines = []
        for label, p in paths.items():
            t, (emb, _) = ingest.timed(o.run, p)
            cells.append(f"{len(p) / t:.2f} img/s = {naive_s[label] / t:.2f}x")
            cosines.append(float(np.mean(np.sum(emb * naive_emb[label], axis=1))))
        rows.append([f"{engine} {precision} -> {lm.engine} {lm.precision}", tower_rate(lm), text_ms(lm), *cells,
                     f"{min(cosines):.5f}"])
    load_after = common.loadavg()
    headers = ["engine / precision", "image tower img/s (batch 32)", "text query ms (8 tokens, p50)",
               f"ingest 12 MP ({args.n12} images)", f"ingest 0.3 MP ({args.n03} images)", "mean cosine to naive (min)"]
    kind = cpu_kind()
    print(f"\n## Engines and precisions, ViT-B/32 architecture\nCPU: {kind}; load avg before {load:.2f}, "
          f"after {load_after:.2f}\n")
    print(common.table(headers, rows))
    return {"cpu": kind, "headers": headers, "rows": rows, "load": (load, load_after)}


if __name__ == "__main__":
    main()
