"""Library scan benchmark: first scan and rescan of a library of many small generated files.

Files: N distinct small JPEGs (default 100,000, 48x32 noise, about 1.5 KB each) in folders of
1,000 under /tmp/clipsearch-bench-library/files-N, made once and reused. The app runs on its own data
folder under /tmp (SQLite and the embedded Redis), created afresh for every run.

ours:  `libraries.run_scan` (the code of `manage.py library scan`): the first scan reads, hashes,
       checks and thumbnails in a thread pool and commits in chunks; a rescan compares path, size
       and mtime and opens nothing that is unchanged.
naive: what re-running `index_folder` costs (and what a scanner without the (path, size, mtime)
       check would do): read and sha256 every file, one thread, then look each hash up; its first
       import (copy + check + thumbnail, one thread) is timed on a sample of --naive-sample files.

"CPU/wall" is the CPU time of this process (all threads) and of the scan's pool processes over wall
time: about 2 means both cores worked.

    .venv/bin/python bench/library_scan.py [--n 100000] [--naive-sample 2000]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

BASE = Path("/tmp/clipsearch-bench-library")
FILES = BASE / "files"  # N files under files-N (see main)
PER_FOLDER = 1000


def generate(n: int) -> None:
    """N distinct JPEGs (made once; a marker file says how many)."""
    import numpy as np
    from PIL import Image

    marker = FILES / f".made-{n}"
    if marker.exists():
        return
    shutil.rmtree(FILES, ignore_errors=True)
    rng = np.random.default_rng(0)
    started = time.perf_counter()
    for i in range(n):
        folder = FILES / f"album {i // PER_FOLDER:03d}"
        if i % PER_FOLDER == 0:
            folder.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)).save(folder / f"IMG_{i:06d}.jpg", quality=80)
    marker.touch()
    print(f"generated {n:,} files in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def cpu_seconds() -> tuple[float, float]:
    """CPU time of this process (all its threads), and of its finished children (the scan's pool)."""
    return tuple(r.ru_utime + r.ru_stime for r in (resource.getrusage(resource.RUSAGE_SELF),
                                                     resource.getrusage(resource.RUSAGE_CHILDREN)))


def timed(fn):
    """(result, wall s, CPU s of this process, CPU s of the pool processes)."""
    wall, (main, pool) = time.perf_counter(), cpu_seconds()
    result = fn()
    main2, pool2 = cpu_seconds()
    return result, time.perf_counter() - wall, main2 - main, pool2 - pool


def naive_rescan(paths):
    from embeddings.models import Image

    found = 0
    for p in paths:
        sha = hashlib.sha256(p.read_bytes()).hexdigest()
        found += Image.objects.filter(sha256=sha).exists()
    return found


def naive_import(paths):
    from embeddings import services

    return services.add_images((str(p), p.read_bytes, p.stat().st_size) for p in paths).added


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--naive-sample", type=int, default=2000)
    args = ap.parse_args()
    global FILES
    FILES = BASE / f"files-{args.n}"
    generate(args.n)

    data_dir = BASE / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    for var in ("DATABASE_URL", "REDIS_URL", "CLIPSEARCH_MEDIA_ROOT", "CLIPSEARCH_INDEX_DIR"):
        os.environ.pop(var, None)
    common.setup_django(model_dir="demo", data_dir=data_dir)
    from django.conf import settings
    from django.core.management import call_command

    from clipsearch import embedded_redis
    from embeddings.library import libraries

    call_command("migrate", verbosity=0, interactive=False)
    embedded_redis.start(settings.DATA_DIR)
    load = common.loadavg()
    try:
        library = libraries.add_library(str(FILES), "bench")
        first, *first_t = timed(lambda: libraries.run_scan(library))
        assert first["counts"]["added"] == args.n, first["counts"]
        again, *re_t = timed(lambda: libraries.run_scan(library))
        assert again["counts"]["unchanged"] == args.n, again["counts"]
        paths = sorted(FILES.rglob("*.jpg"))
        found, *naive_t = timed(lambda: naive_rescan(paths))
        assert found == args.n
        sample = paths[: args.naive_sample]
        from embeddings.models import Image

        Image.objects.filter(pk__in=Image.objects.filter(path__in=[str(p.relative_to(FILES)) for p in sample])
                             .values_list("pk", flat=True)).delete()  # so that the sample is new to the app
        added, *imp_t = timed(lambda: naive_import(sample))
        assert len(added) == len(sample)
    finally:
        embedded_redis.stop(settings.DATA_DIR)

    n = args.n

    def row(what, files, t):
        wall, main, pool = t
        return [what, files, wall, files / wall, main, pool, (main + pool) / wall]

    rows = [row("first scan (ours)", n, first_t),
            row(f"first import (naive, index_folder, {len(sample):,} files)", len(sample), imp_t),
            row("rescan, unchanged (ours)", n, re_t),
            row("rescan, unchanged (naive: read + sha256 + look-up)", n, naive_t)]
    re_wall, naive_wall = re_t[0], naive_t[0]
    text = "\n".join([
        f"# Library scan: {n:,} small JPEGs (bench/library_scan.py, commit {common.git_rev()})",
        "",
        common.machine_line(),
        f"Load average (1 min) at start: {load:.2f}. Database: SQLite; Redis: embedded.",
        "",
        common.table(["what", "files", "seconds", "files/s", "CPU s (main)", "CPU s (pool)", "CPU/wall"], rows),
        "",
        f"Rescan of an unchanged library: {re_wall:.1f} s (target: at most 30 s); "
        f"{naive_wall / re_wall:.1f}x faster than reading and hashing every file.",
    ])
    print(text)
    name = "library_scan.md" if n == 100_000 else f"library_scan-{n}.md"
    (common.RESULTS_DIR / name).write_text(text + "\n")


if __name__ == "__main__":
    main()
