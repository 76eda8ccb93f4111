"""A real S3 HTTP API for the tests: moto's server on 127.0.0.1, on a port the kernel picks.

    python -m tests.s3_server     # prints the port on its first line, serves until its parent dies

It runs as its own process (the web hosts and workers of a test reach it over HTTP like any S3),
and it ends itself when the process that started it is gone, so a killed test run leaves no server.
"""
import os
import sys
import time

from moto.server import ThreadedMotoServer


def main() -> int:
    parent = os.getppid()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    print(server.get_host_and_port()[1], flush=True)
    while os.getppid() == parent:
        time.sleep(0.5)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
