import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from embeddings.backup import archive
from embeddings.backup.restore import NotEmpty, restore


class Command(BaseCommand):
    help = ("Bring a backup made by `backup` back onto an empty install (rows, vectors, media; the index is built "
            "from the vectors, nothing is encoded). Checks the whole backup before changing anything.")

    def add_arguments(self, parser):
        parser.add_argument("src", help="a folder written by `manage.py backup`")
        parser.add_argument("--force", action="store_true", help="replace what this install already holds")

    def handle(self, src, force, **options):
        def bar(total, desc):
            return tqdm(total=total, desc=desc, unit="file", disable=None, file=sys.stderr)

        try:
            done = restore(src, progress=bar, force=force)
        except (archive.BadBackup, NotEmpty) as exc:
            raise CommandError(str(exc), returncode=2) from None
        self.stdout.write(f"restored {sum(done['rows'].values())} rows and {done['media']} media files from {src}; "
                          f"index built with {done['indexed'] or 0} vectors")
