from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from embeddings import services


class Command(BaseCommand):
    help = "Import the images of a folder. Safe to re-run: files already stored are skipped."

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--recursive", "-r", action="store_true")

    def handle(self, path, recursive, **options):
        root = Path(path)
        if not root.is_dir():
            raise CommandError(f"{path} is not a folder")
        paths = sorted(p for p in (root.rglob("*") if recursive else root.iterdir()) if p.is_file())
        files = ((str(p), p.read_bytes, _size(p)) for p in tqdm(paths, desc="importing", unit="file", disable=None))
        report = services.add_images(files)
        for bad in report.rejected:
            self.stderr.write(f"skipped {bad.filename}: {bad.reason}")
        self.stdout.write(f"added {len(report.added)}, skipped {len(report.duplicates)} duplicates and "
                          f"{len(report.rejected)} unreadable files")


def _size(path):
    try:
        return path.stat().st_size
    except OSError:
        return None  # reading it will say why
