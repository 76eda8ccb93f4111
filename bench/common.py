"""Helpers shared by the benchmarks: paths, environment, timing, load check, tables."""
from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "var" / "bench"
DATA_DIR = BENCH_DIR / "data"
RESULTS_DIR = ROOT / "bench" / "results"

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def app_env(model_dir: str | Path | None = None, precision: str | None = None, data_dir: Path | None = None) -> dict:
    """Environment for the app inside a benchmark: its own data folder, no rate limit."""
    env = {
        "DJANGO_SETTINGS_MODULE": "clipsearch.settings",
        "CLIPSEARCH_DATA_DIR": str(data_dir or DATA_DIR),
        "CLIPSEARCH_SEARCH_RATE": "0",
        "DJANGO_ALLOWED_HOSTS": "testserver,localhost",
        "CLIP_LOG_LEVEL": "WARNING",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
    }
    if model_dir is not None:
        env["CLIP_MODEL_NAME"] = str(model_dir)
    if precision is not None:
        env["CLIP_PRECISION"] = precision
    return env


def setup_django(model_dir: str | Path | None = None, data_dir: Path | None = None) -> None:
    """django.setup() with the bench data folder; must run before any app import."""
    os.environ.update(app_env(model_dir, data_dir=data_dir))
    (data_dir or DATA_DIR).mkdir(parents=True, exist_ok=True)
    import warnings

    warnings.filterwarnings("ignore", message=".*torchvision.*")
    import django

    django.setup()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def loadavg() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


_WAIT_BUDGET = [600.0]  # seconds of waiting for a quiet machine, shared by the whole run


def wait_for_quiet(limit: float = 1.2, step: float = 60) -> float:
    """Wait until the 1-minute load is under `limit` (at most 10 minutes per run, all waits together);
    return the load seen, which the tables report."""
    load = loadavg()
    while load > limit and _WAIT_BUDGET[0] > 0:
        print(f"  [load {load:.2f} > {limit}; waiting {step:.0f} s]", file=sys.stderr, flush=True)
        time.sleep(step)
        _WAIT_BUDGET[0] -= step
        load = loadavg()
    return load


def pg_database(url: str, fresh: bool = False) -> None:
    """A bench's own PostgreSQL database at `url`: made if missing, or (fresh) dropped and made again."""
    import psycopg

    server, name = url.rsplit("/", 1)
    with psycopg.connect(f"{server}/postgres", autocommit=True) as db:
        if fresh:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if fresh or not db.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            db.execute(f'CREATE DATABASE "{name}"')


def percentile(values, q) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def rss_mb(pid: int | None = None) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def fmt(v, digits=2) -> str:
    if v is None:
        return "–"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return f"{v:,}"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.{digits}f}"


def table(headers: list[str], rows: list[list]) -> str:
    """A markdown table (also readable in a terminal)."""
    cells = [[str(h) for h in headers]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r):  # cells past the last header are left out
        return "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule] + [line(r) for r in cells[1:]])


def machine() -> dict:
    info = {"cpu": "?", "cores": os.cpu_count(), "flags": ""}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        for line in cpuinfo.splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                info["flags"] = " ".join(sorted(f for f in flags if f.startswith(("avx", "fma", "amx")) or "bf16" in f))
                break
    except OSError:
        pass
    try:
        info["mem_gib"] = round(int(Path("/proc/meminfo").read_text().split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    info["python"] = platform.python_version()
    try:
        import faiss
        import torch
        import transformers

        info.update(torch=torch.__version__, faiss=faiss.__version__, transformers=transformers.__version__)
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def kind_tag() -> str:
    """The CPU kind in a results file's name ("avx512-amx", "avx512", "avx2"): the kinds' figures sit side
    by side (an Intel Xeon with AMX int8/bf16 tiles runs ONNX Runtime's int8 kernels unlike an AMD EPYC)."""
    flags = machine()["flags"].split()
    if "avx512f" not in flags:
        return "avx2"
    return "avx512-amx" if "amx_int8" in flags else "avx512"


def machine_line() -> str:
    m = machine()
    return (f"{m['cpu']}, {m['cores']} cores ({m['flags']}), {m.get('mem_gib', '?')} GiB RAM; "
            f"Python {m['python']}, torch {m.get('torch')}, faiss {m.get('faiss')}, "
            f"transformers {m.get('transformers')}")


def git_rev() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
