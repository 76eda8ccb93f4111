"""A web process's catch-up (embeddings.index.refresher): one kept thread serves every round (a new
thread and database connection per round cost 5-8 ms of a search), the count check is taken after
the waiting search was let go, and stopping the index ends the thread."""
import time

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from embeddings.index import catchup
from embeddings.index.signal import bump_generation
from embeddings.index.vector_index import VectorIndex
from tests.index.test_vector_index import DIM, clustered, store

pytestmark = pytest.mark.django_db(transaction=True)


def wait_for(check, seconds=10):
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the index did not catch up"
        time.sleep(0.02)


def test_rounds_run_on_one_kept_thread_and_stopping_ends_it(settings, redis):
    settings.INDEX_REFRESH_SECONDS = 0  # every search asks for a round
    store(clustered(40))
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    q = clustered(1, seed=9)[0]
    threads = []
    for n in range(3):
        store(clustered(5, seed=n + 1), start=40 + 5 * n)
        bump_generation("m")
        index.search(q, 5)
        wait_for(lambda n=n: index.size() == 45 + 5 * n)
        threads.append(index._refresher._thread)
    assert threads[0].is_alive() and all(t is threads[0] for t in threads)
    index.stop()
    assert not threads[0].is_alive()


def test_a_sync_without_count_leaves_it_owed_to_check_count(settings, redis, monkeypatch):
    monkeypatch.setattr(catchup, "COUNT_EVERY", 0)
    settings.INDEX_REFRESH_SECONDS = 0
    store(clustered(20))
    index = VectorIndex("m", DIM)
    index.sync(force=True)
    store(clustered(3, seed=5), start=20)
    bump_generation("m")
    with CaptureQueriesContext(connection) as asked:
        index.sync(count=False)  # what a waiting search's round does
    assert index.size() == 23 and not any("COUNT(" in q["sql"].upper() for q in asked)
    with CaptureQueriesContext(connection) as asked:
        index.check_count()  # after the search was let go
    assert any("COUNT(" in q["sql"].upper() for q in asked)
    with CaptureQueriesContext(connection) as asked:
        index.check_count()  # nothing owed, nothing due
    assert len(asked) == 0
