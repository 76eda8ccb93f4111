"""Start-up benchmark: wall time from spawning a fresh web process until it is ready to answer a
search, and its memory (RSS and peak RSS) at that point; naive beside ours.

ours:  a subprocess imports `clipsearch.wsgi` (Django + `selectors.warm_up()`: model, one text
       query, index from the saved index file / database), with CLIP_MODEL_NAME=demo and with the
       ViT-B/32 directory (precision auto).
naive: a subprocess sets Django up (no warm-up), loads `CLIPModel` + `CLIPProcessor` directly
       (fp32), runs one text query padded to 77 tokens and builds a flat index from the same rows.
Each process gets a database with 10k indexed images (synthetic vectors) for its model, prepared
once before timing (ours also finds the index file a previous web process saved, as on a restart).

    .venv/bin/python bench/startup.py [--full] [--runs 3]
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import vitb32  # noqa: E402

STARTUP_DIR = common.BENCH_DIR / "startup"
COLLECTION = 10_000

# The last lines of both children: ready, with this memory and this many vectors in the index.
READY = r"""
peak_mb = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
info = {"rss_mb": psutil.Process().memory_info().rss / 2**20, "peak_mb": peak_mb, "indexed": indexed}
print("READY " + json.dumps(info), flush=True)
"""

CHILD_OURS = r"""
import json, os, sys
import psutil
import clipsearch.wsgi  # warms the model and the index
from django.conf import settings
from embeddings.index.vector_index import get_index
from embeddings.search import selectors
indexed = get_index(settings.MODEL_KEY, selectors.model_info()["embedding_dim"]).stats()["size"]
""" + READY

CHILD_NAIVE = r"""
import json, os, sys
os.environ["CLIPSEARCH_WARMUP"] = "false"
import psutil
import clipsearch.wsgi  # Django only
import faiss, numpy as np, torch
from transformers import CLIPModel, CLIPProcessor
from django.conf import settings
from embeddings.clip.config import resolve_model_name
from embeddings.models import Embedding
src = resolve_model_name(os.environ["CLIP_MODEL_NAME"])
model = CLIPModel.from_pretrained(src, dtype=torch.float32).eval()
processor = CLIPProcessor.from_pretrained(src)
t = processor(text=["a photo"], padding="max_length", max_length=77, truncation=True, return_tensors="pt")
with torch.inference_mode():
    f = model.get_text_features(input_ids=t["input_ids"], attention_mask=t["attention_mask"]).pooler_output
rows = list(Embedding.objects.filter(model_name=settings.MODEL_KEY).values_list("image_id", "vector"))
vecs = np.frombuffer(b"".join(bytes(v) for _, v in rows), np.float32).reshape(len(rows), -1)
index = faiss.IndexIDMap2(faiss.IndexFlatIP(vecs.shape[1]))
index.add_with_ids(vecs, np.array([i for i, _ in rows], np.int64))
indexed = index.ntotal
""" + READY

PREPARE = r"""
import sys
sys.path.insert(0, sys.argv[1])
import common, search
common.setup_django(sys.argv[2], data_dir=__import__("pathlib").Path(sys.argv[3]))
from django.core.management import call_command
from django.conf import settings
from embeddings.search import selectors
from embeddings.index.vector_index import get_index
from embeddings.models import Embedding
call_command("migrate", verbosity=0, interactive=False)
dim = selectors.model_info()["embedding_dim"]
n = int(sys.argv[4])
if Embedding.objects.filter(model_name=settings.MODEL_KEY).count() != n:
    Embedding.objects.all().delete()
    from embeddings.models import Image
    Image.objects.all().delete()
    import numpy as np
    vecs = search.mixture(n, seed=7)
    if dim != vecs.shape[1]:
        vecs = vecs[:, :dim] / np.linalg.norm(vecs[:, :dim], axis=1, keepdims=True)
    search.populate(np.ascontiguousarray(vecs, np.float32), settings.MODEL_KEY)
get_index(settings.MODEL_KEY, dim).sync(force=True)  # builds and saves the index file, as a web process does
print("prepared", settings.MODEL_KEY, n)
"""


def demo_available() -> bool:
    from embeddings.clip.config import DEMO_MODEL_DIR

    return (DEMO_MODEL_DIR / "config.json").exists()


def env_for(model: str, data_dir: Path) -> dict:
    env = dict(os.environ)
    env.update(common.app_env(model, data_dir=data_dir))
    env["PYTHONPATH"] = str(common.ROOT)
    env.pop("CLIP_PRECISION", None)  # auto
    return env


def prepare(model: str, data_dir: Path) -> None:
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-c", PREPARE, str(Path(__file__).resolve().parent), model, str(data_dir),
                    str(COLLECTION)], env=env_for(model, data_dir), check=True, cwd=common.ROOT,
                   stdout=subprocess.DEVNULL)


def spawn(code: str, model: str, data_dir: Path) -> dict:
    t = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env_for(model, data_dir), cwd=common.ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = None
    for line in proc.stdout:
        if line.startswith("READY "):
            ready = time.perf_counter() - t
            info = json.loads(line[6:])
            break
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait()
    if ready is None:
        raise RuntimeError(f"process for {model} never became ready:\n{err[-2000:]}")
    return {"seconds": ready, **info}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true", help="5 runs per row instead of 3")
    ap.add_argument("--runs", type=int)
    ap.add_argument("--no-wait", action="store_true")
    args = ap.parse_args(argv)
    runs = args.runs or (5 if args.full else 3)
    import numpy as np

    models = [("ViT-B/32 dir", str(vitb32.ensure()))]
    notes = []
    if demo_available():
        models.insert(0, ("demo", "demo"))
    else:
        notes.append("demo model not built yet (demo/model missing): its rows are left out")
    rows, raw = [], {}
    for label, model in models:
        data_dir = STARTUP_DIR / ("demo" if model == "demo" else "vitb32")
        prepare(model, data_dir)
        load = common.loadavg() if args.no_wait else common.wait_for_quiet()
        base = None
        for who, code in (("naive", CHILD_NAIVE), ("ours", CHILD_OURS)):
            spawn(code, model, data_dir)  # one untimed start: file cache warm for both
            res = [spawn(code, model, data_dir) for _ in range(runs)]
            raw[(label, who)] = res
            secs = float(np.median([r["seconds"] for r in res]))
            rss = float(np.median([r["rss_mb"] for r in res]))
            peak = float(np.max([r["peak_mb"] for r in res]))
            base = base or secs
            rows.append([f"{who} ({label})", res[0]["indexed"], secs, rss, peak, base / secs])
        notes.append(f"{label}: load {load:.2f} -> {common.loadavg():.2f}")
    headers = ["web process", "images indexed", "ready s (median)", "RSS MB at ready", "peak RSS MB",
               "speed-up vs naive"]
    out = {"title": f"Web process start-up (median of {runs} runs after one untimed)", "headers": headers,
           "rows": rows, "notes": notes}
    print(f"\n## {out['title']}\n")
    for n in notes:
        print("note: " + n)
    print()
    print(common.table(headers, rows))
    return out


if __name__ == "__main__":
    main()
