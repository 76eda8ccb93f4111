"""Search as `make run` serves it, end to end: `python -m clipsearch.launcher run` (gunicorn with
WEB_CONCURRENCY processes, DEBUG off) on a database of N indexed images, a client on loopback
sending GET /api/search with a new text every time (so each request encodes its text).

    latency: N = 100k and 1M rows on PostgreSQL (the machine's Redis) and on SQLite (the embedded
             Redis), one searcher, p50/p99 of new and of repeated queries.
    ingest:  two workers (CLIPSEARCH_WORKERS=2, OCR as configured: on) indexing 12 MP photos with
             `manage.py index_folder` while a person searches once a second; the same ingest with
             nobody searching beside it, for the rate.

The rows: ViT-B/32-sized clustered vectors (bench/search.py's mixture), file names "IMG_000123.JPG",
four camera makes, and one row in twenty with a sign's text as OCR read it ("Main Street", ...), so
that the keyword side has real work (a query word such as "street" is in ~1% of the rows).
Model: the ViT-B/32 architecture with random weights and the real tokenizer (bench/vitb32.py).

    .venv/bin/python bench/serve.py latency [--rows 100000,1000000] [--databases postgres,sqlite]
    .venv/bin/python bench/serve.py ingest [--rows 100000] [--photos 96]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import vitb32  # noqa: E402

ROOT = common.ROOT
DATA = common.BENCH_DIR / "serve"
PG_URL = "postgres://postgres@127.0.0.1:5432/bench_serve"
SIGNS = ["Main Street", "City Hall", "River Walk", "Botanic Garden", "Forest Trail", "Beach Parking",
         "Snow chains required", "Kitchen open 12-22", "Platform 9", "TOTAL 42.50 EUR", "Exit", "No entry",
         "Bridge Road", "Market Square", "Museum", "Old Town", "Lake View", "Harbour", "Bus stop", "Open"]
SUFFIXES = ["", " at night", " in winter", " at dawn", " in the rain", " from above", " close up", " in summer",
            " at noon", " in fog"]
CAMERAS = [("Apple", "iPhone 13"), ("Canon", "EOS 80D"), ("SONY", "ILCE-7M3"), ("", "")]


def environment(database: str, model_dir: Path, workers: int, port: int, web: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(common.app_env(model_dir, data_dir=DATA / database), CLIPSEARCH_PORT=str(port),
               CLIPSEARCH_WORKERS=str(workers), WEB_CONCURRENCY=str(web), CLIPSEARCH_LIBRARY_SCAN_MINUTES="0",
               PYTHONUNBUFFERED="1", DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost")
    if database == "postgres":
        env.update(DATABASE_URL=PG_URL, REDIS_URL="redis://127.0.0.1:6379/9")
    return env


def fresh(database: str, env: dict) -> None:
    """An empty database and data folder."""
    (DATA / database).mkdir(parents=True, exist_ok=True)
    for sub in (DATA / database).iterdir():  # all but the ONNX export, which a user's data folder keeps too
        if sub.name != "onnx":
            shutil.rmtree(sub) if sub.is_dir() else sub.unlink()
    if database == "postgres":
        common.pg_database(PG_URL, fresh=True)
        subprocess.run(["redis-cli", "-n", "9", "flushdb"], check=True, capture_output=True)
    subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)


def fill(n: int) -> None:
    """(In a child with the app's environment) n indexed rows with vectors and keyword text, then the index file."""
    import django

    django.setup()
    import search as search_bench
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction
    from django.utils import timezone

    from embeddings.models import Embedding, Image
    from embeddings.search import keywords

    now, start, s = timezone.now(), time.perf_counter(), 0
    for vectors in search_bench.mixture_chunks(n, seed=n, chunk=5000):
        rows = []
        for j in range(len(vectors)):
            i = s + j + 1
            make, model = CAMERAS[i % len(CAMERAS)]
            image = Image(file=f"images/bench/{i}.jpg", original_filename=f"IMG_{i:06d}.JPG", sha256=f"{i:064x}",
                          width=4000, height=3000, format="JPEG", byte_size=3_000_000, status=Image.Status.INDEXED,
                          indexed_at=now, camera_make=make, camera_model=model,
                          ocr_text=SIGNS[(i // 20) % len(SIGNS)] if i % 20 == 0 else "",
                          ocr_status=Image.OcrStatus.DONE)
            image.keywords = keywords.document(image)
            rows.append(image)
        with transaction.atomic():
            rows = Image.objects.bulk_create(rows)  # ids from the database's own sequence, as uploads get them
            Embedding.objects.bulk_create(Embedding(image_id=image.pk, model_name=settings.MODEL_KEY, vector=v.tobytes())
                                          for image, v in zip(rows, vectors, strict=True))
        s += len(vectors)
    filled = time.perf_counter() - start
    if settings.DATABASES["default"]["ENGINE"].endswith("postgresql"):
        from django.db import connection

        with connection.cursor() as cursor:  # the statistics a long-running database has
            cursor.execute("ANALYZE")
    start = time.perf_counter()
    call_command("rebuild_index", stdout=open(os.devnull, "w"))  # the file a worker (or the operator) builds
    print(json.dumps({"fill_s": round(filled, 1), "index_build_s": round(time.perf_counter() - start, 1)}), flush=True)


class Server:
    """`python -m clipsearch.launcher run` in its own process group, stopped as Ctrl-C stops it."""

    def __init__(self, env: dict):
        self.env, self.port = env, int(env["CLIPSEARCH_PORT"])
        self.took: list[float] = []
        self.proc = subprocess.Popen([sys.executable, "-m", "clipsearch.launcher", "run"], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 1).close()
                return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("the server stopped while starting") from None
                time.sleep(0.5)
        raise TimeoutError("the server did not start")

    def search(self, q: str) -> float:
        """Milliseconds for one GET /api/search, on a new connection as a browser's would be after a pause."""
        t = time.perf_counter()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        conn.request("GET", "/api/search?" + urllib.parse.urlencode({"q": q, "k": 20}))
        resp = conn.getresponse()
        body = resp.read()
        ms = (time.perf_counter() - t) * 1000
        conn.close()
        if resp.status != 200:
            raise RuntimeError(f"{resp.status}: {body[:300]!r}")
        self.took.append(json.loads(body)["took_ms"])  # the server's search, after the text's encode
        return ms

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def queries(count: int, offset: int = 0) -> list[str]:
    """Texts never asked before in this run (every request encodes its text)."""
    import search as search_bench

    base = search_bench.distinct_queries(1000)
    every = [b + s for s in SUFFIXES for b in base]  # 10,000 texts
    return every[offset:offset + count]


def latency(args, model_dir: Path) -> list[dict]:
    out = []
    for database in args.databases.split(","):
        for n in [int(x) for x in args.rows.split(",")]:
            env = environment(database, model_dir, workers=0, port=common.free_port(), web=args.web)
            marker = DATA / database / "filled.json"  # what the last fill left: --reuse compares code on the same rows
            if args.reuse and marker.exists() and json.loads(marker.read_text()).get("rows") == n:
                filled = json.loads(marker.read_text())["fill"]
                subprocess.run([sys.executable, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, check=True)
            else:
                fresh(database, env)
                filled = json.loads(subprocess.run([sys.executable, __file__, "fill", str(n)], cwd=ROOT, env=env,
                                                   check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1])
                marker.write_text(json.dumps({"rows": n, "fill": filled}))
            server = Server(env)
            try:
                for q in queries(args.web * 10, offset=9000):  # each web process: model, index, first queries
                    server.search(q)
                load = common.loadavg() if args.no_wait else common.wait_for_quiet()
                new = [server.search(q) for q in queries(args.requests)]
                again = [server.search("a red car in the street") for _ in range(args.requests)]
            finally:
                server.stop()
            row = {"database": database, "rows": n, **filled, "load": load, "requests": args.requests,
                   "new_p50": common.percentile(new, 50), "new_p99": common.percentile(new, 99),
                   "repeated_p50": common.percentile(again, 50), "repeated_p99": common.percentile(again, 99)}
            print(json.dumps(row), flush=True)
            out.append(row)
    return out


def ingest(args, model_dir: Path) -> list[dict]:
    import ingest as ingest_bench

    photos = ingest_bench.ensure_images("12MP", 2 * args.photos)
    env = environment("postgres", model_dir, workers=2, port=common.free_port(), web=args.web)
    fresh("postgres", env)
    subprocess.run([sys.executable, __file__, "fill", str(args.rows)], cwd=ROOT, env=env, check=True, capture_output=True)
    os.environ.update(env)
    import django

    django.setup()
    from django.db import close_old_connections

    from embeddings.models import Image

    def settled(total: int) -> bool:
        close_old_connections()
        done = Image.objects.filter(status=Image.Status.INDEXED)
        return done.count() >= total and not done.filter(ocr_status=Image.OcrStatus.PENDING).exists()

    server = Server(env)
    out, asked = [], iter(queries(5000))
    try:
        for q in queries(args.web * 10, offset=9000):
            server.search(q)
        time.sleep(20)  # both workers load their model
        server.took.clear()
        idle = [server.search(next(asked)) for _ in range(args.idle_queries)]
        idle_took = list(server.took)
        for phase, searching in (("nobody searching", False), ("a person searching every second", True)):
            part = photos[:args.photos] if not searching else photos[args.photos:]
            folder = DATA / f"import-{int(searching)}"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            for p in part:
                os.link(p, folder / p.name)
            total = Image.objects.count() + len(part)
            lat, stop = [], threading.Event()

            def searcher(lat=lat, stop=stop):
                while not stop.wait(args.every):
                    lat.append(server.search(next(asked)))

            thread = threading.Thread(target=searcher, daemon=True)
            load = common.loadavg()
            server.took.clear()
            started = time.perf_counter()
            if searching:
                thread.start()
            subprocess.run([sys.executable, "manage.py", "index_folder", str(folder)], cwd=ROOT, env=env, check=True,
                           capture_output=True)
            while not settled(total):
                time.sleep(0.2)
            wall = time.perf_counter() - started
            stop.set()
            if searching:
                thread.join()
            row = {"phase": phase, "photos": len(part), "wall_s": round(wall, 1), "photos_per_s": round(len(part) / wall, 2),
                   "load_before": load, "searches": len(lat)}
            if lat:
                row.update(p50=common.percentile(lat, 50), p99=common.percentile(lat, 99), max=max(lat),
                           search_p50=common.percentile(server.took, 50), search_p99=common.percentile(server.took, 99))
            print(json.dumps(row), flush=True)
            out.append(row)
    finally:
        server.stop()
    out.insert(0, {"phase": "idle workers", "searches": len(idle), "p50": common.percentile(idle, 50),
                   "p99": common.percentile(idle, 99), "search_p50": common.percentile(idle_took, 50),
                   "search_p99": common.percentile(idle_took, 99)})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", choices=["latency", "ingest", "fill"])
    ap.add_argument("n", nargs="?", type=int, help="fill: rows")
    ap.add_argument("--rows", default=None)
    ap.add_argument("--databases", default="postgres,sqlite")
    ap.add_argument("--requests", type=int, default=300)
    ap.add_argument("--photos", type=int, default=96)
    ap.add_argument("--every", type=float, default=1.0)
    ap.add_argument("--idle-queries", type=int, default=60)
    ap.add_argument("--no-wait", action="store_true", help="do not wait for a quiet machine")
    ap.add_argument("--reuse", action="store_true", help="latency: keep the rows a fill of the same size left")
    ap.add_argument("--tag", default="", help="a suffix for the results file (runs kept side by side)")
    ap.add_argument("--web", type=int, default=2, help="WEB_CONCURRENCY (the default of `make run`)")
    args = ap.parse_args(argv)
    if args.mode == "fill":
        return fill(args.n)
    from embeddings.clip.device import cpu_kind

    model_dir = vitb32.ensure()
    args.rows = args.rows or ("100000,1000000" if args.mode == "latency" else "100000")
    print("CPU:", cpu_kind(), "|", common.machine_line(), flush=True)
    results = latency(args, model_dir) if args.mode == "latency" else ingest(args, model_dir)
    if args.mode == "latency":
        print(common.table(["database", "rows", "new query p50 ms", "p99", "repeated p50", "p99", "load"],
                           [[r["database"], r["rows"], r["new_p50"], r["new_p99"], r["repeated_p50"], r["repeated_p99"],
                             r["load"]] for r in results]))
    else:
        print(common.table(["phase", "photos", "photos/s", "searches", "p50 ms", "p99 ms", "max ms",
                            "search alone p50 (server)", "p99"],
                           [[r["phase"], r.get("photos", "–"), r.get("photos_per_s"), r["searches"], r.get("p50"),
                             r.get("p99"), r.get("max"), r.get("search_p50"), r.get("search_p99")] for r in results]))
    common.RESULTS_DIR.mkdir(exist_ok=True)
    name = f"serve-{args.mode}-{common.kind_tag()}{'-' + args.tag if args.tag else ''}.json"
    (common.RESULTS_DIR / name).write_text(json.dumps(
        {"cpu": cpu_kind(), "machine": common.machine_line(), "rev": common.git_rev(), "results": results}, indent=1))


if __name__ == "__main__":
    main()
