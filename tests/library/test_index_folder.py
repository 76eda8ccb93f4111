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


FACTS = ("sha256", "original_filename", "width", "height", "format", "byte_size", "status", "taken_at", "camera_make",
         "camera_model", "gps_lat", "gps_lon")


def _rows():
    return sorted(Image.objects.values_list(*FACTS))


def test_the_pool_import_makes_the_same_rows_as_one_process(redis, demo_images, tmp_path):
    """index_folder prepares files in a pool of processes and commits them a chunk at a time; the rows,
    files and thumbnails are what the one-at-a-time path (services.add_images) makes, duplicates in the
    folder and rejected files included."""
    from embeddings import services
    from embeddings.files import prepare

    folder = tmp_path / "many"
    folder.mkdir()
    for i, (data, _) in enumerate(demo_images[:70]):
        (folder / f"{i:03d}.jpg").write_bytes(data)
    (folder / "070-again.jpg").write_bytes(demo_images[5][0])  # a duplicate inside the folder
    (folder / "071-notes.jpg").write_bytes(b"not an image")
    for name, (data, _expected) in list(CORPUS.items())[:12]:
        (folder / f"x-{name.replace('/', '_')[:60]}").write_bytes(data)
    paths = sorted(folder.iterdir())
    assert len(paths) >= services.POOL_FROM  # the process pool path
    one = services.add_images((str(p), p.read_bytes(), None) for p in paths)
    expected, expected_files = _rows(), sorted(Image.objects.values_list("file", flat=True))
    assert len(one.duplicates) == 1 and one.rejected
    Image.objects.all().delete()
    pooled = services.import_paths(paths)
    assert _rows() == expected
    assert (len(pooled.added), len(pooled.duplicates), len(pooled.rejected)) == \
        (len(one.added), len(one.duplicates), len(one.rejected))
    assert sorted(o.filename.rsplit("/", 1)[-1] for o in pooled.rejected) == \
        sorted(o.filename.rsplit("/", 1)[-1] for o in one.rejected)
    for image in Image.objects.all():  # each stored copy and thumbnail is there and is its own
        assert image.file.storage.exists(image.file.name) and image.thumbnail.storage.exists(image.thumbnail.name)
        assert image.file.name not in expected_files
    dup = pooled.duplicates[0]
    assert dup.filename.endswith("070-again.jpg") and dup.existing.pk and dup.existing.original_filename == "005.jpg"
    assert not prepare.SHARED  # nothing left behind by the import
    again = services.import_paths(paths)  # safe to re-run: everything is a duplicate now, nothing stored twice
    assert not again.added and len(again.duplicates) == len(pooled.added) + 1 and _rows() == expected
