"""Ingest as a user runs it, end to end: `manage.py index_folder DIR` with a running
`manage.py rqworker embeddings` beside it (the settings' ModelWorker), OCR off and on, on the
database given (PostgreSQL by default), the naive pipeline beside it in the same run.

Marginal times (the run of `--large` photos minus the run of `--small`, per photo) so that start-up
and the worker's model load cancel; the data folder is warmed once (the one-time ONNX export is
not counted). Model: the ViT-B/32 architecture with random weights (bench/vitb32.py). Photos:
bench/ingest.py's synthetic photo-like JPEGs (12 MP and 0.3 MP); with OCR on they hold no text.

naive: full decode, CLIPImageProcessor, fp32 torch, flat index (bench/ingest.py's Naive), per photo.
ours:  the wall time from starting index_folder (or `library add` + `library scan`) until every
       photo is indexed (and, with OCR on, read).

    .venv/bin/python bench/e2e.py --database-url postgres://postgres@127.0.0.1:5432/bench_e2e \\
        --redis-url redis://127.0.0.1:6379/9 [--sizes 12MP,0.3MP] [--small 16] [--large 64] \\
        [--paths "index_folder,library scan"]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import ingest as ingest_bench  # noqa: E402
import vitb32  # noqa: E402

ROOT = common.ROOT


def folder_of(paths, n: int, where: Path) -> Path:
    """A folder holding the first n photos (hard links: nothing copied)."""
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    for p in paths[:n]:
        os.link(p, where / p.name)
    return where


USER_PATHS = {  # what a user types, by the name the table gives it
    "index_folder": lambda folder: [["index_folder", str(folder)]],
    "library scan": lambda folder: [["library", "add", str(folder), "--name", "bench"], ["library", "scan", "bench"]],
}


def run_user_path(env: dict, folder: Path, n: int, ocr: bool, how: str = "index_folder", timeout: float = 3600) -> float:
    """Seconds from `index_folder` (or `library add` + `library scan`) starting until n photos are
    indexed (and read, with OCR on)."""
    env = {**env, "CLIPSEARCH_OCR": "true" if ocr else "false"}
    manage = [sys.executable, "manage.py"]
    subprocess.run(manage + ["flush", "--no-input"], cwd=ROOT, env=env, check=True, capture_output=True)
    import redis  # the ids start again at 1: nothing of the last run's claims may be left

    redis.Redis.from_url(env["REDIS_URL"]).flushdb()
    for sub in ("media", "index", "previews"):
        shutil.rmtree(Path(env["CLIPSEARCH_DATA_DIR"]) / sub, ignore_errors=True)
    worker = subprocess.Popen(manage + ["rqworker", "embeddings"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    from django.db import close_old_connections

    from embeddings.models import Image

    def finished() -> bool:
        close_old_connections()
        done = Image.objects.filter(status="indexed")
        return done.count() >= n and not (ocr and done.filter(ocr_status="pending").exists())

    try:
        # The worker loads its model first, as it does when a user starts it beforehand: it joins rq's
        # registry after that (a fixed 8 s wait let its load fall into some timed runs: 2.4-6.1 s for 16 photos).
        from rq import Worker

        connection = redis.Redis.from_url(env["REDIS_URL"])
        deadline = time.monotonic() + 300
        while not Worker.all(connection=connection) and time.monotonic() < deadline:
            if worker.poll() is not None:
                raise RuntimeError("the worker stopped while starting")
            time.sleep(0.2)
        time.sleep(1)  # its first registry cleaning
        started = time.perf_counter()
        for command in USER_PATHS[how](folder):
            subprocess.run(manage + command, cwd=ROOT, env=env, check=True, capture_output=True)
        while time.perf_counter() - started < timeout:
            if finished():
                return time.perf_counter() - started
            time.sleep(0.2)
        raise TimeoutError(f"{n} photos not indexed in {timeout} s")
    finally:
        worker.terminate()
        worker.wait(timeout=60)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_e2e")
    ap.add_argument("--redis-url", default="redis://127.0.0.1:6379/9")
    ap.add_argument("--sizes", default="12MP,0.3MP")
    ap.add_argument("--small", type=int, default=16)
    ap.add_argument("--large", type=int, default=64)
    ap.add_argument("--ocr", default="off,on")
    ap.add_argument("--paths", default="index_folder", help=f"comma-separated, of: {', '.join(USER_PATHS)}")
    ap.add_argument("--tag", default="", help="a suffix for the results file (runs kept side by side)")
    args = ap.parse_args(argv)
    model_dir = vitb32.ensure()
    data_dir = common.BENCH_DIR / "e2e"
    env = {**os.environ, **common.app_env(model_dir, data_dir=data_dir), "DATABASE_URL": args.database_url,
           "REDIS_URL": args.redis_url, "CLIPSEARCH_LIBRARY_SCAN_MINUTES": "0"}
    if args.database_url.startswith("postgres"):  # the bench's own database, made on first use
        common.pg_database(args.database_url)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
    os.environ.update(env)  # this process watches the database through the app's models
    import django

    django.setup()
    from embeddings.clip.device import cpu_kind

    naive = ingest_bench.Naive(model_dir)
    rows, out = [], {"cpu": cpu_kind(), "machine": common.machine_line(), "rev": common.git_rev(),
                     "load_before": common.wait_for_quiet(), "results": []}
    for label in args.sizes.split(","):
        paths = ingest_bench.ensure_images(label, args.large)
        naive_s, _ = ingest_bench.timed(naive.run, paths[:args.small])
        naive_per = naive_s / args.small
        for how, ocr in [(h, o == "on") for h in args.paths.split(",") for o in args.ocr.split(",")]:
            run_user_path(env, folder_of(paths, 1, common.BENCH_DIR / "e2e-warm"), 1, ocr)  # warm: the ONNX export
            times = {n: run_user_path(env, folder_of(paths, n, common.BENCH_DIR / f"e2e-{n}"), n, ocr, how)
                     for n in (args.small, args.large)}
            per = (times[args.large] - times[args.small]) / (args.large - args.small)
            row = {"size": label, "path": how, "ocr": ocr, "naive_s_per_photo": round(naive_per, 4),
                   "ours_s_per_photo": round(per, 4), "ours_photos_per_s": round(1 / per, 2),
                   "x_naive": round(naive_per / per, 2), "wall_s": {str(k): round(v, 2) for k, v in times.items()}}
            out["results"].append(row)
            rows.append([label, how, "on" if ocr else "off", f"{naive_per * 1000:.0f}", f"{per * 1000:.0f}",
                         f"{1 / per:.1f}", f"{naive_per / per:.2f}x"])
            print(json.dumps(row), flush=True)
    out["load_after"] = common.loadavg()
    print("CPU:", cpu_kind(), "|", common.machine_line())
    print(common.table(["photos", "path", "OCR", "naive ms/photo", "ours ms/photo", "ours photos/s", "vs naive"], rows))
    (common.RESULTS_DIR / f"e2e-{common.kind_tag()}{'-' + args.tag if args.tag else ''}.json").write_text(
        json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
