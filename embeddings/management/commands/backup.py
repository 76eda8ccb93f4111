import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from embeddings.backup import archive
from embeddings.backup.make import backup


class Command(BaseCommand):
    help = ("Write a consistent copy of the database rows (vectors included) and the uploads and thumbnails "
            "from the storage into DEST, a new or empty folder; the app may keep running.")

    def add_arguments(self, parser):
        parser.add_argument("dest", help="a new or empty folder")
        parser.add_argument("--force", action="store_true", help="write into a folder that is not empty")

    def handle(self, dest, force, **options):
        def bar(total, desc):
            return tqdm(total=total, desc=desc, unit="file", disable=None, file=sys.stderr)

        try:
            manifest = backup(dest, progress=bar, force=force)
        except archive.BadBackup as exc:
            raise CommandError(str(exc)) from None
        rows = sum(t["rows"] for t in manifest["tables"].values())
        self.stdout.write(f"backed up {rows} rows in {len(manifest['tables'])} tables and {len(manifest['media'])} "
                          f"media files to {dest}")
