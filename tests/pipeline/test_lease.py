"""The lease a worker holds in Redis while it encodes, on the real Redis."""
import time

import pytest


# ---- the worker's lease, on the real Redis ------------------------------------------------------
def _lease(redis):
    from embeddings.pipeline.ingest import Lease, _lease_key

    lease = Lease(redis)
    return lease, _lease_key(lease.token)


def test_lease_key_lives_while_held_and_is_deleted_on_exit(redis, settings):
    settings.CLAIM_LEASE_SECONDS = 2
    lease, key = _lease(redis)
    assert not redis.exists(key)
    with lease as held:
        assert held is lease and lease.token in key
        assert redis.exists(key)
        assert 0 < redis.ttl(key) <= 2
    assert not redis.exists(key)
    lease._thread.join(2)
    assert not lease._thread.is_alive()  # the heartbeat stopped with the lease


@pytest.mark.slow
def test_lease_is_kept_by_the_heartbeat_and_expires_without_it(redis, settings):
    settings.CLAIM_LEASE_SECONDS = 2
    lease, key = _lease(redis)
    lease.__enter__()
    try:
        time.sleep(2.5)  # past the lease time: only the heartbeat keeps the key
        assert redis.exists(key)
        # the holder dies: the heartbeat stops, nobody deletes the key
        lease._stop.set()
        lease._thread.join(2)
        assert not lease._thread.is_alive()
        assert redis.exists(key)
        time.sleep(2.5)
        assert not redis.exists(key)
    finally:
        lease._stop.set()
