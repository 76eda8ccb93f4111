import os
from pathlib import Path

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from embeddings import services
from embeddings.library import libraries
from embeddings.models import Library


class Command(BaseCommand):
    help = ("Import the images of a folder (copied into the data folder). Safe to re-run: files already stored are "
            "skipped. With --in-place the folder becomes a library instead: indexed where it lies, never copied, "
            "rescanned by the workers (see `manage.py library`).")

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--recursive", "-r", action="store_true")
        parser.add_argument("--in-place", action="store_true",
                            help="add the folder (always recursively) as a library and scan it; nothing is copied")

    def handle(self, path, recursive, in_place=False, **options):
        root = Path(path)
        if not root.is_dir():
            raise CommandError(f"{path} is not a folder")
        if in_place:
            return self._in_place(root)
        paths = sorted(p for p in (root.rglob("*") if recursive else root.iterdir()) if p.is_file())
        with tqdm(total=len(paths), desc="importing", unit="file", disable=None) as bar:
            report = services.import_paths(paths, progress=bar)
        for bad in report.rejected:
            self.stderr.write(f"skipped {bad.filename}: {bad.reason}")
        self.stdout.write(f"added {len(report.added)}, skipped {len(report.duplicates)} duplicates and "
                          f"{len(report.rejected)} unreadable files")

    def _in_place(self, root: Path) -> None:
        """The folder as a library (added once; run again, it is rescanned)."""
        library = Library.objects.filter(root=os.path.realpath(root)).first()
        if library is None:
            try:
                library = libraries.add_library(str(root))
            except libraries.LibraryError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"added library {library.name!r} (id {library.pk}) at {library.root}")
        call_command("library", "scan", str(library.pk), stdout=self.stdout, stderr=self.stderr)
