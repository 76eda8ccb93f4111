from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from embeddings import services
from embeddings.jobs import enqueue_ingest


class Command(BaseCommand):
    help = "Import the images of a folder. Safe to re-run: files already stored are skipped."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--recursive", "-r", action="store_true")

    def handle(self, path, recursive, **options):
        root = Path(path)
        if not root.is_dir():
            raise CommandError(f"{path} is not a folder")
        files = sorted(p for p in (root.rglob("*") if recursive else root.iterdir()) if p.is_file())
        counts = {"added": 0, "duplicates": 0, "unreadable": 0}
        for p in tqdm(files, desc="importing", unit="file", disable=None):
            try:
                services.add_image(p.read_bytes(), p.name, enqueue=False)
                counts["added"] += 1
            except services.DuplicateImage:
                counts["duplicates"] += 1
            except (services.RejectedImage, OSError) as exc:
                counts["unreadable"] += 1
                self.stderr.write(f"skipped {p}: {exc}")
        if counts["added"]:
            enqueue_ingest()
        self.stdout.write(f"added {counts['added']}, skipped {counts['duplicates']} duplicates and {counts['unreadable']} unreadable files")
