"""After a test run: is any process of this checkout still running? CI runs it after each
`make test` (the suite must stop whatever it starts: workers, web servers, the embedded Redis, the
S3 server), and it exits 1 listing them.

    python -m tests.leftover_processes [FOLDER]    # default: the checkout

A process belongs to the checkout when its working folder or its command line names the folder;
this process and its ancestors (the CI script, make) are not counted.
"""
import os
import sys
import time
from pathlib import Path

from tests.support import ROOT


def ancestors() -> set[int]:
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def leftovers(folder: Path = ROOT) -> list[str]:
    folder = str(Path(folder).resolve())
    mine, found = ancestors(), []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            state = Path(f"/proc/{entry.name}/stat").read_text().rsplit(")", 1)[1].split()[0]
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(f"/proc/{entry.name}/cwd")
        except OSError:  # gone meanwhile, or not ours to inspect
            continue
        if state != "Z" and (cwd == folder or cwd.startswith(folder + os.sep) or folder in cmdline):
            found.append(f"{entry.name} (cwd {cwd}): {cmdline.strip()[:300]}")
    return found


def main(argv, grace: float = 10) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else ROOT
    deadline = time.monotonic() + grace  # what was just told to stop may take a moment to exit
    while (found := leftovers(folder)) and time.monotonic() < deadline:
        time.sleep(0.5)
    for line in found:
        print(f"left running: {line}")
    if not found:
        print("no process of the checkout is left running")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
