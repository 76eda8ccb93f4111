"""A worker SIGKILLed mid-batch and restarted at once, as a process supervisor does (or followed
by a `--burst` worker): its claimed images are encoded within the lease time plus one batch,
with the default settings, and none is encoded twice."""
import signal
import time

import pytest
from django.conf import settings

from embeddings.jobs import ingest_pending
from embeddings.models import Embedding, Image
from embeddings.queue import get_queue
from tests.support import add_pending, run_worker, start_worker_and_wait

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
N = 320  # ten batches of 32: the first worker is killed while it holds one


@pytest.mark.parametrize("restart", ["long-running", "burst"])
def test_killed_worker_restarted_at_once_recovers_within_a_lease(redis, demo_images, tmp_path, restart):
    add_pending(demo_images, N)
    get_queue().enqueue(ingest_pending)
    worker = start_worker_and_wait(tmp_path)
    deadline = time.monotonic() + 60
    while not Image.objects.filter(status="processing").exists() and time.monotonic() < deadline:
        time.sleep(0.01)  # between two batches: kill it once it holds the next one
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = time.monotonic()
    claimed = Image.objects.filter(status="processing").count()
    assert claimed > 0, "the worker was not killed mid-batch"

    second = run_worker(tmp_path, *(["--burst"] if restart == "burst" else []), wait=False)
    try:
        budget = settings.CLAIM_LEASE_SECONDS + 40  # the lease, then one batch (model load included)
        while Image.objects.filter(status="indexed").count() < N and time.monotonic() - killed_at < budget:
            time.sleep(0.2)
        recovered_in = time.monotonic() - killed_at
        if restart == "burst":  # it must not have left before the claimed batch came back
            out, _ = second.communicate(timeout=120)
            assert second.returncode == 0, out
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
    print(f"{restart}: {claimed} claimed images of the killed worker; all {N} indexed {recovered_in:.1f} s after the kill")
    assert Image.objects.filter(status="indexed").count() == N, f"not all indexed after {recovered_in:.1f} s"
    assert recovered_in <= 60
    assert Embedding.objects.count() == N
    assert max(Image.objects.values_list("attempts", flat=True)) <= 2  # the killed batch: twice at most
