"""`manage.py index_folder`: imports a folder (recursively on request), safe to re-run, and skips
files that are not images it takes, counting them."""
import pytest
from django.core.management import call_command

from embeddings.models import Image
from embeddings.pipeline import ingest
from tests.bad_inputs import corpus

pytestmark = pytest.mark.django_db(transaction=True)
CORPUS = corpus()
KEEP = {n for n, (_, e) in CORPUS.items() if e == "indexed"}


@pytest.mark.slow
def test_index_folder_is_resumable(redis, demo_images, tmp_path):
    folder = tmp_path / "photos"
    (folder / "sub").mkdir(parents=True)
    for i, (data, _) in enumerate(demo_images[:6]):
        (folder / ("sub" if i % 2 else "") / f"{i}.jpg").write_bytes(data)
    call_command("index_folder", str(folder))
    assert Image.objects.count() == 3
    call_command("index_folder", str(folder), "--recursive")
    assert Image.objects.count() == 6


def test_index_folder_skips_awkward_files(redis, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, (data, _) in CORPUS.items():
        safe = name.replace("/", "_")[:200]
        (folder / safe).write_bytes(data)
    call_command("index_folder", str(folder))
    out = capsys.readouterr().out
    rejected = sum(1 for _, e in CORPUS.values() if e == "rejected")
    assert f"skipped 0 duplicates and {rejected} unreadable files" in out
    ingest.ingest_pending(redis=redis)
    assert Image.objects.filter(status="indexed").count() == len(KEEP)
