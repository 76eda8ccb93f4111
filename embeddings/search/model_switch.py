"""Which model's vectors answer searches while `CLIP_MODEL_NAME` changes.

After a switch, the workers encode the library with the new model (`reindex`). Until the new
model covers every image, searches keep answering with the old model's vectors, query encoded
by the old model, so search never goes dark and never mixes two models' vectors in one ranking.
The switch happens on its own once the new model covers the library; from then on this process
stops checking (new images are encoded with the configured model only).
"""
from __future__ import annotations

import threading
import time

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Count

from embeddings.clip.config import VALIDATED_CONFIG, resolve_model_name
from embeddings.models import Embedding, Image

CHECK_SECONDS = 5.0  # a coverage count over a million rows costs tens of ms: not on every search
_lock = threading.Lock()
_state = {"for": None, "key": None, "at": 0.0, "settled": False, "covered": 0, "total": 0}


def coverage(key: str) -> tuple[int, int]:
    """(images with an embedding for `key`, images that should have one)."""
    total = Image.objects.exclude(status=Image.Status.FAILED).count()
    return Embedding.objects.filter(model_name=key).count(), total


def serving_key() -> str:
    """The model key searches use now: the configured one, or during a switch the previous one."""
    current = settings.MODEL_KEY
    with _lock:
        if _state["for"] != current:  # decided for another configuration (tests change it in-process)
            _state.update(key=None, at=0.0, settled=False)
        if _state["settled"] or time.monotonic() - _state["at"] < CHECK_SECONDS and _state["key"]:
            return _state["key"]
        key = current
        try:
            covered, total = coverage(current)
            _state.update(covered=covered, total=total)
            if covered >= total:
                _state["settled"] = True
            else:
                others = (Embedding.objects.exclude(model_name=current).values("model_name")
                          .annotate(n=Count("id")).order_by("-n").first())
                if others and others["n"] > covered:
                    key = others["model_name"]
        except DatabaseError:  # not migrated yet, or the database is away: the configured model
            pass
        _state.update(key=key, at=time.monotonic(), **{"for": current})
        return key


def switching() -> dict | None:
    """What the status page and API say while the old model still answers, else None."""
    key = serving_key()
    if key == settings.MODEL_KEY:
        return None
    return {"serving": key, "target": settings.MODEL_KEY, "covered": _state["covered"], "total": _state["total"]}


def service_args(key: str) -> dict:
    """CLIPService arguments for the model stored under `key` (the key is its name, or "demo")."""
    return {**VALIDATED_CONFIG, "model_name": resolve_model_name(key)}


def reset() -> None:
    """Forget the decision (tests, and after `reindex` starts a switch in this process)."""
    with _lock:
        _state.update(key=None, at=0.0, settled=False, covered=0, total=0, **{"for": None})
