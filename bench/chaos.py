"""Chaos under load, on loopback: 16 searchers for --seconds while two workers ingest 1,000 uploads, and
during it one worker SIGKILLed (restarted at once), Redis restarted (its data lost), every database
session of the app terminated, and the index folder deleted. Then: nothing lost or doubled, and
`check_index` clean.

Everything runs from a fresh temporary data folder: a private redis-server on a free port, gunicorn
(2 processes, demo model), two `rqworker` processes restarted whenever one exits (as systemd's
Restart=always would), and PostgreSQL database `clipsearch_chaos` (dropped and recreated) or SQLite.
Bounded: stops by itself, and kills every process group it started, even on failure.

    .venv/bin/python bench/chaos.py [--seconds 120] [--images 1000] [--sqlite] [--out bench/results/chaos]
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import requests  # noqa: E402

from demo.synth import COLOURS, SHAPES, SIZES, gallery  # noqa: E402

PG = "postgres://postgres@127.0.0.1:5432"
DB = "clipsearch_chaos"
QUERIES = [f"a {z} {c} {s}".replace("  ", " ") for z in (*SIZES, "") for c in COLOURS for s in SHAPES]
WINDOW = 15.0  # seconds after an event in which a request counts as "during" it
FACTS = r"""
import json
from django.conf import settings
from django.db.models import Count
from embeddings.models import Embedding, Image
print("FACTS " + json.dumps({
    "images": Image.objects.count(),
    "status": dict(Image.objects.values_list("status").annotate(n=Count("id")).values_list("status", "n")),
    "dup_sha": Image.objects.values("sha256").annotate(n=Count("id")).filter(n__gt=1).count(),
    "embeddings": Embedding.objects.filter(model_name=settings.MODEL_KEY).count(),
    "failed": list(Image.objects.filter(status="failed").values_list("id", "failure_reason")[:5]),
}, default=str))
"""


def cpu_kind() -> str:
    flags = next((ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("flags")), "")
    return "AVX-512" if "avx512f" in flags.split() else "AVX2" if "avx2" in flags.split() else "no AVX2"


class Rig:
    """The processes of one run; each in its own process group so that its children die with it."""

    def __init__(self, args, data: Path):
        self.data, self.logs, self.procs = data, data / "logs", {}
        self.logs.mkdir(parents=True)
        self.redis_port, self.web_port = common.free_port(), common.free_port()
        self.env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
        self.env.update(common.app_env("demo", data_dir=data), PYTHONUNBUFFERED="1",
                        DJANGO_ALLOWED_HOSTS="127.0.0.1,localhost", REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
                        DATABASE_URL=f"sqlite:///{data / 'db.sqlite3'}" if args.sqlite else f"{PG}/{DB}")
        self.worker_starts = collections.Counter()
        self.lock, self.closing = threading.Lock(), False  # the supervisor and the events both restart workers

    def spawn(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - kept open by the child
        p = subprocess.Popen(argv, cwd=common.ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                             start_new_session=True)
        self.procs[name] = p
        return p

    def manage(self, *argv) -> str:
        p = subprocess.run([sys.executable, "manage.py", *argv], cwd=common.ROOT, env=self.env, capture_output=True, text=True)
        if p.returncode:
            raise RuntimeError(f"manage.py {argv[0]} exited {p.returncode}:\n{p.stderr[-3000:]}")
        return p.stdout

    def redis(self) -> None:
        self.spawn("redis", ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no"])
        wait_port(self.redis_port)

    def worker(self, i: int) -> None:
        self.worker_starts[i] += 1
        self.spawn(f"worker-{i}", [sys.executable, "manage.py", "rqworker", "embeddings"])

    def kill(self, name: str, sig=signal.SIGKILL) -> None:
        p = self.procs.get(name)
        if p is not None and p.poll() is None:
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                pass
            p.wait(20)

    def close(self) -> None:
        self.closing = True
        with self.lock:
            # web first (gracefully), then the workers, Redis last: nothing logs a lost Redis on the way out
            for name in sorted(self.procs, key=lambda n: ("web", "worker", "redis").index(n.split("-")[0])):
                try:
                    self.kill(name, signal.SIGTERM if name.startswith("web") else signal.SIGKILL)
                except subprocess.TimeoutExpired:
                    self.kill(name, signal.SIGKILL)


def wait_port(port: int, seconds: float = 120) -> None:
    import socket

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), 1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing answers on port {port}")


def pg_admin(sql: str, db: str = "postgres") -> None:
    import psycopg

    with psycopg.connect(f"{PG}/{db}", autocommit=True) as c:
        c.execute(sql)


def run(args, rig: Rig) -> dict:
    if not args.sqlite:
        pg_admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        pg_admin(f"CREATE DATABASE {DB}")
    rig.manage("migrate", "--noinput")
    rig.manage("shell", "-c", "from tests.support import make_staff; make_staff('chaos')")
    token = rig.manage("create_api_token", "chaos").strip().splitlines()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    rig.redis()
    rig.spawn("web", [sys.executable, "-m", "gunicorn", "clipsearch.wsgi", "-c", "gunicorn.conf.py",
                      "-b", f"127.0.0.1:{rig.web_port}", "-w", "2", "--timeout", "60"])
    wait_port(rig.web_port)
    base = f"http://127.0.0.1:{rig.web_port}"
    for _ in range(4):  # warm both web processes
        requests.get(f"{base}/api/search", params={"q": "a red circle"}, headers=auth, timeout=60)
    for i in (1, 2):
        rig.worker(i)
    pics = [(common_jpeg(img) + i.to_bytes(2, "big"), f"chaos-{i:04d}.jpg")
            for i, (img, _) in enumerate(gallery(args.images, seed=11, image_size=128))]

    lock, samples, errors, uploaded, events = threading.Lock(), [], [], [], []
    t0 = time.monotonic()
    stop_at = t0 + args.seconds

    def window(start, end):  # the first event whose window (WINDOW s, cut at the next event) the request overlapped
        ends = [at for _, at in events[1:]] + [float("inf")] * bool(events)
        hit = [name for (name, at), nxt in zip(events, ends, strict=True) if start < min(at + WINDOW, nxt) and end >= at]
        return hit[0] if hit else "steady"

    def record(kind, t, dt, status, body):
        with lock:
            w = window(t, time.monotonic())
            samples.append((kind, dt, w))
            if status != 200 and not (kind == "upload" and status == 201):
                errors.append({"kind": kind, "t": round(t - t0, 1), "ms": round(dt), "window": w, "status": status,
                               "body": body[:300]})

    def call(kind, method, path, session, **kw):
        t = time.monotonic()
        try:
            r = session.request(method, base + path, headers=auth, timeout=60, **kw)
            status, body = r.status_code, r.text
        except requests.RequestException as exc:
            r, status, body = None, type(exc).__name__, str(exc)
        record(kind, t, (time.monotonic() - t) * 1000, status, body)
        return r

    def searcher(seed):
        rnd, s = random.Random(seed), requests.Session()
        while time.monotonic() < stop_at:
            if rnd.random() < 0.08:
                call("status", "GET", "/api/status", s)
            else:
                call("search", "GET", "/api/search", s, params={"q": rnd.choice(QUERIES), "k": rnd.choice((10, 20, 50))})

    def uploader():
        s, batch = requests.Session(), 20
        pause = args.seconds * 0.7 / max(1, len(pics) // batch)
        for i in range(0, len(pics), batch):
            chunk = pics[i:i + batch]
            for _ in range(5):  # an upload that failed is sent again, as a client would
                r = call("upload", "POST", "/api/images", s, files=[("files", (n, b, "image/jpeg")) for b, n in chunk])
                if r is not None and r.status_code == 201:
                    with lock:
                        uploaded.extend(x["id"] for x in r.json()["images"])
                        uploaded.extend(x["existing_id"] for x in r.json()["duplicates"])
                    break
                time.sleep(2)
            time.sleep(pause)

    def supervise():  # Restart=always for the workers
        while time.monotonic() < stop_at + 100:
            with rig.lock:
                for i in (1, 2):
                    if not rig.closing and rig.procs[f"worker-{i}"].poll() is not None:
                        rig.worker(i)
            time.sleep(1)

    def drop_db():
        if args.sqlite:
            return "skipped (SQLite has no server sessions)"
        pg_admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname='{DB}' AND pid<>pg_backend_pid()")
        return "all sessions of the app's database terminated"

    def delete_index():
        gone = [str(p.name) for p in (rig.data / "index").iterdir() if p.is_dir()]
        for p in (rig.data / "index").iterdir():
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        return f"deleted index/{', index/'.join(gone) or '(empty)'}"

    def restart_redis():
        rig.kill("redis")
        rig.redis()
        return "redis-server SIGKILLed and started again on the same port (empty)"

    def kill_worker():  # aim for the middle of an ingest batch: the job has started and logged nothing since
        log, deadline = rig.logs / "worker-1.log", time.monotonic() + 15
        while time.monotonic() < deadline and "ingest_pending() (" not in (log.read_text().strip().splitlines() or [""])[-1]:
            time.sleep(0.02)
        mid = time.monotonic() < deadline
        with rig.lock:
            rig.kill("worker-1")
            rig.worker(1)
        return f"worker-1 SIGKILLed ({'mid ingest batch' if mid else 'between jobs'}) and started again at once"

    schedule = [(0.2, "worker SIGKILL", kill_worker), (0.4, "Redis restart", restart_redis),
                (0.6, "DB sessions dropped", drop_db), (0.8, "index deleted", delete_index)]
    threads = [threading.Thread(target=searcher, args=(i,), daemon=True) for i in range(args.clients)]
    threads += [threading.Thread(target=uploader, daemon=True), threading.Thread(target=supervise, daemon=True)]
    load_start = common.loadavg()
    for t in threads:
        t.start()
    done = []
    for frac, name, fn in schedule:
        time.sleep(max(0.0, t0 + frac * args.seconds - time.monotonic()))
        with lock:
            events.append((name, time.monotonic()))
        done.append({"event": name, "at_s": round(time.monotonic() - t0, 1), "what": fn()})
        print(f"  [{done[-1]['at_s']:6.1f} s] {name}: {done[-1]['what']}", flush=True)
    for t in threads[:args.clients]:
        t.join()
    elapsed = time.monotonic() - t0
    threads[args.clients].join(120)
    load_end = common.loadavg()

    facts, waited = {}, time.monotonic()
    while time.monotonic() - waited < args.settle:
        facts = json.loads(rig.manage("shell", "-c", FACTS).split("FACTS ", 1)[1])
        if not facts["status"].get("pending") and not facts["status"].get("processing"):
            break
        time.sleep(5)
    settle_s = time.monotonic() - waited
    check = subprocess.run([sys.executable, "manage.py", "check_index"], cwd=common.ROOT, env=rig.env,
                           capture_output=True, text=True)
    searches = [s for s in samples if s[0] != "upload"]
    lat = [s[1] for s in searches]
    by_window = collections.defaultdict(list)
    for _, dt, w in searches:
        by_window[w].append(dt)
    tracebacks = {p.name: p.read_text(errors="replace").count("Traceback") for p in sorted(rig.logs.glob("*.log"))}
    return {
        "cpu": f"{common.machine()['cpu']} ({cpu_kind()}), {os.cpu_count()} cores", "load": [load_start, load_end],
        "database": "SQLite" if args.sqlite else "PostgreSQL", "seconds": round(elapsed, 1), "clients": args.clients,
        "requests": len(searches), "rps": len(searches) / elapsed, "p50_ms": common.percentile(lat, 50),
        "p99_ms": common.percentile(lat, 99), "max_ms": max(lat),
        "windows": {w: {"requests": len(v), "p50_ms": common.percentile(v, 50), "p99_ms": common.percentile(v, 99),
                        "max_ms": max(v)} for w, v in by_window.items()},
        "errors": errors, "error_counts": dict(collections.Counter(
            f"{e['kind']} {e['status']} ({e['window']})" for e in errors)),
        "events": done, "uploads": len(set(uploaded)), "upload_batches": sum(1 for s in samples if s[0] == "upload"),
        "facts": facts, "settle_s": round(settle_s, 1), "check_index": {"rc": check.returncode, "out": check.stdout[-1500:],
                                                                         "err": check.stderr[-1500:]},
        "worker_starts": dict(rig.worker_starts), "tracebacks_in_logs": tracebacks, "logs": str(rig.logs),
    }


def common_jpeg(img) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def report(res: dict) -> str:
    f, ok = res["facts"], verdict(res)
    by_window = collections.Counter(e["window"] for e in res["errors"])
    rows = [["all", res["requests"], res["rps"], res["p50_ms"], res["p99_ms"], res["max_ms"], len(res["errors"])]]
    rows += [[w, v["requests"], "", v["p50_ms"], v["p99_ms"], v["max_ms"], by_window[w]]
             for w, v in sorted(res["windows"].items())]
    lines = [f"## Chaos under load ({res['database']}, {res['clients']} searchers, {res['seconds']:.0f} s)", "",
             f"CPU: {res['cpu']}; load average {res['load'][0]:.2f} at start, {res['load'][1]:.2f} at end.", "",
             common.table(["window", "requests", "req/s", "p50 ms", "p99 ms", "max ms", "errors"], rows), "",
             "| event | at s | what |", "|---|---|---|"]
    lines += [f"| {e['event']} | {e['at_s']} | {e['what']} |" for e in res["events"]]
    lines += ["", f"errors: {len(res['errors'])} {json.dumps(res['error_counts'])}",
              f"uploads accepted: {res['uploads']} (in {res['upload_batches']} requests); images {f.get('images')}, "
              f"by status {json.dumps(f.get('status'))}, duplicate sha256 {f.get('dup_sha')}, embeddings {f.get('embeddings')}"
              f" (settled after {res['settle_s']} s)",
              f"check_index exit {res['check_index']['rc']}: {(res['check_index']['out'].strip().splitlines() or [''])[-1]}",
              f"worker starts {json.dumps(res['worker_starts'])}; tracebacks in logs {json.dumps(res['tracebacks_in_logs'])}",
              f"verdict: {'PASS' if not ok else 'FAIL: ' + '; '.join(ok)}"]
    return "\n".join(lines)


def verdict(res: dict) -> list[str]:
    f, bad = res["facts"], []
    if res["errors"]:
        bad.append(f"{len(res['errors'])} errors")
    if f.get("images") != res["uploads"] or f.get("dup_sha"):
        bad.append("images lost or doubled")
    if f.get("embeddings") != f.get("images") or set(f.get("status", {})) - {"indexed"}:
        bad.append("not every image indexed once")
    if res["check_index"]["rc"] != 0:
        bad.append("check_index failed")
    return bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=int, default=120)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--settle", type=float, default=90, help="seconds to wait for the queue to drain at the end")
    ap.add_argument("--sqlite", action="store_true", help="SQLite instead of PostgreSQL at 127.0.0.1:5432")
    ap.add_argument("--out", default=str(common.RESULTS_DIR / "chaos"), help="writes OUT.json and OUT.md")
    args = ap.parse_args(argv)
    print(f"CPU {cpu_kind()}, load average {common.loadavg():.2f}", flush=True)
    data = Path(tempfile.mkdtemp(prefix="clipsearch-chaos-"))
    rig = Rig(args, data)
    try:
        res = run(args, rig)
    finally:
        rig.close()
        if not args.sqlite:
            pg_admin(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        logs = Path(tempfile.gettempdir()) / f"{data.name}-logs"
        shutil.move(str(rig.logs), logs)
        shutil.rmtree(data, ignore_errors=True)
        print(f"logs: {logs}", flush=True)
    res["logs"] = str(logs)
    text = report(res)
    print(text)
    if args.out:
        Path(args.out + ".json").write_text(json.dumps(res, indent=1, default=str))
        Path(args.out + ".md").write_text(text + "\n")
    return 1 if verdict(res) else 0


if __name__ == "__main__":
    sys.exit(main())
