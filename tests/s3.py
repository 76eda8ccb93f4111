"""Helpers for tests that put the media in an S3 bucket (CLIPSEARCH_STORAGE=s3) served by a real
S3 HTTP API on 127.0.0.1 (tests/s3_server.py); the fixtures that use them live in tests/conftest.py."""
import subprocess
import sys
import uuid

from tests.support import ROOT

ACCESS = {"AWS_ACCESS_KEY_ID": "clipsearch-test", "AWS_SECRET_ACCESS_KEY": "clipsearch-test-secret",
          "AWS_DEFAULT_REGION": "us-east-1"}


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.s3_server"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline().strip()
    if not line.isdigit():
        proc.kill()
        raise RuntimeError(f"the S3 server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line}"


def client(endpoint: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint, region_name=ACCESS["AWS_DEFAULT_REGION"],
                        aws_access_key_id=ACCESS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=ACCESS["AWS_SECRET_ACCESS_KEY"])


def new_bucket(endpoint: str) -> str:
    name = f"clipsearch-{uuid.uuid4().hex[:12]}"
    client(endpoint).create_bucket(Bucket=name)
    return name


def env(endpoint: str, bucket: str) -> dict:
    """The environment an operator sets for S3 media (for subprocesses: workers, web hosts, commands)."""
    return {"CLIPSEARCH_STORAGE": "s3", "CLIPSEARCH_S3_BUCKET": bucket, "CLIPSEARCH_S3_ENDPOINT_URL": endpoint, **ACCESS}


def storages(endpoint: str, bucket: str) -> dict:
    """STORAGES as clipsearch.settings builds them from env(...), for this process."""
    from django.conf import settings

    from clipsearch import config
    from clipsearch.settings import s3_options

    options = s3_options(config.load(env(endpoint, bucket)))
    return {**settings.STORAGES, "default": {"BACKEND": "embeddings.files.storage.S3Media", "OPTIONS": options}}


def keys(endpoint: str, bucket: str) -> set[str]:
    pages = client(endpoint).get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}
