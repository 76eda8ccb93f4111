"""`manage.py check_index`: compares the index, the database and the media folder; exits 1 on a
mismatch and repairs it with --fix; refuses (exit 2, nothing touched) when the media folder is gone."""
import shutil

import pytest
from django.core.management import call_command

from embeddings.models import Embedding, Image
from embeddings.pipeline import ingest
from tests.support import upload_and_ingest

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_check_index_finds_and_fixes(redis, demo_images, settings):
    upload_and_ingest(demo_images[:8], redis)
    call_command("check_index")  # agrees: exits normally
    Embedding.objects.filter(image=Image.objects.first()).delete()
    with pytest.raises(SystemExit) as exc:
        call_command("check_index")
    assert exc.value.code == 1
    call_command("check_index", "--fix")
    ingest.ingest_pending(redis=redis)
    call_command("check_index")


def test_check_index_refuses_when_media_folder_is_missing(redis, demo_images, settings, tmp_path):
    upload_and_ingest(demo_images[:5], redis)
    shutil.move(settings.MEDIA_ROOT, tmp_path / "moved-away")
    from django.core.files.storage import default_storage

    default_storage.__dict__.pop("base_location", None)
    default_storage.__dict__.pop("location", None)
    with pytest.raises(SystemExit) as exc:
        call_command("check_index", "--fix")
    assert exc.value.code == 2
    assert Image.objects.filter(status="indexed").count() == 5  # nothing deleted or failed


def test_check_index_reports_and_recovers_claims_of_a_dead_worker(redis, demo_images, capsys):
    from django.utils import timezone

    from tests.support import add_pending

    images = add_pending(demo_images, 6)
    # Four claimed by a worker whose lease is gone (killed), two by one whose lease lives.
    Image.objects.filter(pk__in=[i.pk for i in images[:4]]).update(
        status="processing", claim_token="dead", claimed_at=timezone.now(), attempts=1)
    Image.objects.filter(pk__in=[i.pk for i in images[4:]]).update(
        status="processing", claim_token="alive", claimed_at=timezone.now(), attempts=1)
    redis.set("clipsearch:lease:alive", "1", ex=60)
    with pytest.raises(SystemExit) as exc:
        call_command("check_index")
    assert exc.value.code == 1
    assert "claimed by a worker that is gone: 4" in capsys.readouterr().out
    call_command("check_index", "--fix")
    assert Image.objects.filter(status="pending").count() == 4
    assert Image.objects.filter(status="processing", claim_token="alive").count() == 2
