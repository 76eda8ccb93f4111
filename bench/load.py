"""Load test on loopback: 16 concurrent searchers for 60 s while 500 images are ingested.

Starts its own gunicorn (WEB_CONCURRENCY processes), one RQ worker and the embedded Redis on a
fresh data folder under var/bench/load, with the demo model. Bounded: stops by itself.

    .venv/bin/python bench/load.py [--clients 16] [--seconds 60] [--images 500]
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

from demo.synth import COLOURS, SHAPES, SIZES  # noqa: E402

DATA = common.BENCH_DIR / "load"
QUERIES = [f"a {z} {c} {s}" for z in (*SIZES, "") for c in COLOURS for s in SHAPES]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--web", type=int, default=2, help="gunicorn worker processes")
    args = ap.parse_args()

    shutil.rmtree(DATA, ignore_errors=True)
    port = common.free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(common.app_env("demo", data_dir=DATA), DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost", PYTHONUNBUFFERED="1")
    py = sys.executable

    def manage(*argv):
        subprocess.run([py, "manage.py", *argv], cwd=common.ROOT, env=env, check=True, stdout=subprocess.DEVNULL)

    manage("migrate", "--noinput")
    subprocess.run([py, "-m", "clipsearch.embedded_redis", "start"], cwd=common.ROOT, env=env, check=True)
    procs = []
    try:
        procs.append(subprocess.Popen([py, "-m", "gunicorn", "clipsearch.wsgi", "-b", f"127.0.0.1:{port}",
                                       "-w", str(args.web), "--timeout", "60"], cwd=common.ROOT, env=env,
                                      stderr=subprocess.DEVNULL))
        for _ in range(120):
            try:
                socket.create_connection(("127.0.0.1", port), 1).close()
                break
            except OSError:
                time.sleep(0.5)
        # Warm: one search per web process before the clock starts.
        for _ in range(args.web * 2):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/api/search?q=a+red+circle&k=20")
            c.getresponse().read()
        procs.append(subprocess.Popen([py, "manage.py", "rqworker", "embeddings"], cwd=common.ROOT, env=env,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        loader = subprocess.Popen([py, "manage.py", "demo", "--count", str(args.images), "--seed", "99"],
                                  cwd=common.ROOT, env=env, stdout=subprocess.DEVNULL)

        latencies, errors, lock = [], [], threading.Lock()
        stop_at = time.monotonic() + args.seconds

        def client(seed):
            rnd = random.Random(seed)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            while time.monotonic() < stop_at:
                q = rnd.choice(QUERIES).replace("  ", " ").replace(" ", "+")
                t = time.perf_counter()
                try:
                    conn.request("GET", f"/api/search?q={q}&k=20")
                    resp = conn.getresponse()
                    body = resp.read()
                    ok = resp.status == 200 and "results" in json.loads(body)
                except Exception as exc:
                    ok, body = False, repr(exc).encode()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                dt = (time.perf_counter() - t) * 1000
                with lock:
                    latencies.append(dt)
                    if not ok:
                        errors.append(body[:200])

        threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        loader.wait(60)
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        c.request("GET", "/api/status")
        status = json.loads(c.getresponse().read())
        headers = ["clients", "seconds", "requests", "req/s", "p50 ms", "p99 ms", "errors", "indexed during run"]
        print(common.table(headers, [[
            args.clients, round(elapsed), len(latencies), len(latencies) / elapsed, common.percentile(latencies, 50),
            common.percentile(latencies, 99), len(errors), f"{status['counts']['indexed']} of {status['total']}",
        ]]))
        if errors:
            print("first errors:", errors[:3])
        return 1 if errors else 0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([py, "-m", "clipsearch.embedded_redis", "stop"], cwd=common.ROOT, env=env)


if __name__ == "__main__":
    sys.exit(main())
