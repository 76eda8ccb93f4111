"""The media storage in an S3-compatible bucket (CLIPSEARCH_STORAGE=s3), shared by every web and
worker host. Everything reads and writes media through Django's storage API, so only three things
differ from django-storages' S3Storage:

- `url()` is the app's own `/media/<name>`: files are streamed through the app, which applies the
  read rule (CLIPSEARCH_PUBLIC), the sniffed content type and nosniff, exactly as for the file
  system. Signed bucket URLs would hand out links that outlive a logout and skip those checks, and
  the bucket need not be reachable from browsers at all (it usually sits on a private network).
- `exists("")` (the media root, which `check_index` asks about before it marks files lost) says
  whether the bucket answers, instead of asking S3 for an object with an empty key.
- A forked child (the library scan's pool) opens its own connection: a boto3 client's pooled
  sockets must never be shared between processes.
"""
from __future__ import annotations

import os
import threading
import weakref

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.utils.encoding import filepath_to_uri
from storages.backends.s3 import S3Storage

_LIVE: weakref.WeakSet = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for storage in list(_LIVE):
        storage._connections = threading.local()
        storage._unsigned_connections = threading.local()


os.register_at_fork(after_in_child=_after_fork_in_child)


class S3Media(S3Storage):
    def __init__(self, **settings_):
        super().__init__(**settings_)
        _LIVE.add(self)

    def url(self, name, parameters=None, expire=None, http_method=None):
        return settings.MEDIA_URL + filepath_to_uri(name)

    def exists(self, name):
        if not (name or "").strip("/"):
            try:
                self.connection.meta.client.head_bucket(Bucket=self.bucket_name)
                return True
            except (ClientError, BotoCoreError):
                return False
        return super().exists(name)

    def delete(self, name):
        # The callers treat a file they could not delete as an OSError (logged, the row still goes).
        try:
            super().delete(name)
        except (ClientError, BotoCoreError) as exc:
            raise OSError(f"could not delete {name} from the bucket: {exc}") from exc
