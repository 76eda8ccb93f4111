"""Start-up: a bad setting stops it naming the variable, the launcher behind `make demo` / `make run`,
Django's deployment checks under production settings."""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from tests.support import ROOT, running_processes


def _env(tmp_path, **extra):
    # A fresh machine's environment: no services configured, nothing the browser tests set.
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE")}
    env.update(CLIPSEARCH_DATA_DIR=str(tmp_path / "data"), PYTHONUNBUFFERED="1", **extra)
    return env


@pytest.mark.parametrize("var,value", [("CLIP_BATCH_SIZE", "abc"), ("CLIP_DEVICE", "tpu"), ("CLIP_PRECISION", "int4"),
                                       ("CLIP_ENABLE_CACHING", "maybe"), ("CLIPSEARCH_PUBLIC", "perhaps")])
def test_bad_setting_stops_start_up_naming_the_variable(tmp_path, var, value):
    out = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=_env(tmp_path, **{var: value}),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert var in out.stderr.splitlines()[-1]


def test_run_without_hub_fails_clearly(tmp_path):
    env = _env(tmp_path, CLIP_MODEL_NAME="openai/clip-vit-base-patch32")
    out = subprocess.run([sys.executable, "-m", "clipsearch.launcher", "run"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1
    assert "CLIP_MODEL_NAME" in out.stderr


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _running_in_group(pgid: int) -> list[int]:
    return [pid for pid, group in running_processes().items() if group == pgid]


@pytest.mark.slow
def test_demo_launcher_serves_and_indexes(tmp_path):
    """What `make demo` runs, on a fresh data folder, SQLite and the embedded Redis."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "clipsearch.launcher", "demo"], cwd=ROOT,
                            env=_env(tmp_path, CLIPSEARCH_PORT=str(port)), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    lines = []
    try:
        deadline = time.time() + 240
        while time.time() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if "password:" in line or proc.poll() is not None:
                break
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}/" in text, text
        assert "password:" in text
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30).read().decode()
        assert "demo model" in page
        # The worker indexes the gallery in the background.
        import json

        for _ in range(240):
            status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=30))
            if status["counts"]["indexed"] >= 480:
                break
            time.sleep(1)
        assert status["counts"]["indexed"] == 480 and status["counts"]["failed"] == 0
        results = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/search?q=a+red+circle&k=5", timeout=30))
        assert len(results["results"]) == 5
        # A supervisor (or `kill`) stops the launcher alone, with SIGTERM: it stops all it started.
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
        deadline = time.time() + 30
        while _running_in_group(proc.pid) and time.time() < deadline:
            time.sleep(0.5)
        assert not _running_in_group(proc.pid), "the launcher left processes running"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
    finally:  # whatever failed above, nothing of the group outlives the test
        if _running_in_group(proc.pid):
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_check_deploy_is_clean_under_production_settings(tmp_path):
    env = _env(tmp_path, CLIPSEARCH_HTTPS="true", DJANGO_DEBUG="false",
               DJANGO_SECRET_KEY="k" * 10 + "a-long-random-secret-key-for-production-9f8e7d6c5b4a3")
    out = subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr + out.stdout
