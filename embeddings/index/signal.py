"""A Redis counter per model, bumped after every write to its embeddings (and after a new index file
is published): web processes compare it with what they saw to know cheaply whether to catch up."""
from __future__ import annotations

import logging

from embeddings.queue import redis_connection

log = logging.getLogger(__name__)


def generation_key(model_key: str) -> str:
    return f"clipsearch:gen:{model_key}"


def bump_generation(model_key: str) -> None:
    """Tell every web process that this model's embeddings changed (best effort)."""
    try:
        redis_connection().incr(generation_key(model_key))
    except Exception as exc:  # Redis down: processes still catch up on their timed check
        log.warning("could not bump index generation: %s", exc)


def read_generation(model_key: str):
    """The counter's value; None only when Redis cannot be asked. A counter never bumped (a gallery
    filled before this Redis started, or a restarted Redis) is started at 0: read as unknown, it made
    every search catch up and draw the cutoff's sample again (two round trips a search)."""
    try:
        redis, key = redis_connection(), generation_key(model_key)
        value = redis.get(key)
        if value is None:
            redis.set(key, 0, nx=True)  # NX: a bump that came first is kept
            value = redis.get(key)
        return value
    except Exception:
        return None
