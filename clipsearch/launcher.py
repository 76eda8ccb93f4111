"""Starts the whole app on one machine: `python -m clipsearch.launcher demo|run`.

demo: the bundled demo model, runserver, an admin user with a fresh printed password, and the
      generated demo gallery. run: the configured model (CLIP_MODEL_NAME), gunicorn.
Both: migrate, start the embedded Redis unless REDIS_URL is set, start one worker (more with
CLIPSEARCH_WORKERS), and stop everything they started on Ctrl-C or SIGTERM.
"""
import os
import secrets
import signal
import socket
import subprocess
import sys
import time


def manage(*args, **kw):
    return subprocess.run([sys.executable, "manage.py", *args], check=True, **kw)


def _wait_for_port(host, port, children, seconds=120):
    """Print the URL only once the server answers there."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and all(c.poll() is None for c in children):
        try:
            socket.create_connection((host, port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"the web server did not start on {host}:{port}")


def _interrupt(signum, frame):
    raise KeyboardInterrupt  # the Ctrl-C path: stop the children, then leave


def main(mode: str) -> int:
    # A supervisor or `kill` sends SIGTERM to this process alone: by default it would die here and
    # leave the server, the workers and Redis running without it.
    signal.signal(signal.SIGTERM, _interrupt)
    if mode == "demo":
        os.environ.setdefault("CLIP_MODEL_NAME", "demo")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clipsearch.settings")
    import django

    django.setup()
    from django.conf import settings

    from clipsearch import embedded_redis
    from clipsearch.config import CONFIG
    from embeddings.clip.service import get_clip_service

    host, port = CONFIG["CLIPSEARCH_HOST"], str(CONFIG["CLIPSEARCH_PORT"])
    try:
        # Load the model here first: a missing model fails now, with a message naming CLIP_MODEL_NAME.
        get_clip_service().warmup()
    except Exception as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    manage("migrate", "--noinput", stdout=subprocess.DEVNULL)
    manage("collectstatic", "--noinput", stdout=subprocess.DEVNULL)
    if settings.REDIS_EMBEDDED:
        embedded_redis.start(settings.DATA_DIR)
    children = []
    try:
        for _ in range(CONFIG["CLIPSEARCH_WORKERS"]):
            children.append(subprocess.Popen([sys.executable, "manage.py", "rqworker", settings.RQ_QUEUE]))
        password = None
        if mode == "demo":
            from django.contrib.auth import get_user_model

            user, _ = get_user_model().objects.get_or_create(username="admin", defaults={"is_staff": True, "is_superuser": True})
            password = secrets.token_urlsafe(12)
            user.set_password(password)
            user.save()
            manage("demo")
        if mode == "demo":
            server = [sys.executable, "manage.py", "runserver", "--noreload", f"{host}:{port}"]
        else:
            server = [sys.executable, "-m", "gunicorn", "clipsearch.wsgi", "-b", f"{host}:{port}",
                      "-w", str(CONFIG["WEB_CONCURRENCY"]), "--timeout", "120"]
        children.append(subprocess.Popen(server))
        _wait_for_port(host, int(port), children)
        print(f"\n  clipsearch is running at http://{host}:{port}/")
        if password:
            print(f"  admin: http://{host}:{port}/admin/  user: admin  password: {password}")
        print("  Ctrl-C stops it.\n", flush=True)
        while all(c.poll() is None for c in children):
            time.sleep(1)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for c in children:
            if c.poll() is None:
                c.send_signal(signal.SIGTERM)
        for c in children:
            try:
                c.wait(10)
            except subprocess.TimeoutExpired:
                c.kill()
        if settings.REDIS_EMBEDDED:
            embedded_redis.stop(settings.DATA_DIR)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "demo"))
