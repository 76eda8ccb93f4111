"""One long-lived catch-up thread per index in a web process. A search that finds its view older
than INDEX_REFRESH_MS asks it for a round and waits for that round a moment; the thread keeps its
database connection between rounds (a new thread and connection per round cost 5-8 ms, measured),
and the count check, the catch-up's safety net (12 ms at 100k rows on PostgreSQL), runs after the
waiting searches were let go."""
from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connections

log = logging.getLogger(__name__)


class Refresher:
    def __init__(self, index):
        self.index = index
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._round = threading.Event()  # set when the round that starts next has published its view
        self._thread: threading.Thread | None = None
        self._stopping = False

    def ask(self) -> threading.Event:
        """Start a round (or join the coming one): the event is set once it has caught up."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():  # first use, or a forked child
                self._thread = threading.Thread(target=self._run, name="clipsearch-index-refresh", daemon=True)
                self._thread.start()
            self._wake.set()
            return self._round

    def stop(self, timeout: float = 5) -> None:
        """End the thread, and with it its database connection (a test database cannot be dropped
        while one is open)."""
        with self._lock:
            self._stopping, thread = True, self._thread
            self._wake.set()
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait()
            with self._lock:
                self._wake.clear()
                done, self._round = self._round, threading.Event()
                if self._stopping:
                    done.set()
                    connections.close_all()
                    return
            try:
                close_old_connections()  # past CONN_MAX_AGE, or broken: a new one
                self.index.sync(count=False)
                done.set()
                self.index.check_count()
            except Exception:  # the database or Redis is away: searches keep the view they have
                log.exception("index catch-up failed; searching the current view")
                connections.close_all()
            finally:
                done.set()
