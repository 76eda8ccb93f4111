import sys

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from embeddings.library import libraries
from embeddings.models import Library

SHOWN_SKIPS = 50  # skipped files printed per scan; the admin and the API keep the first 1000


class Command(BaseCommand):
    help = ("Libraries: folders whose images are searched where they lie (never copied, never written). "
            "`library add PATH [--name NAME]`, `library list`, `library scan [NAME ...] [--all]`, `library remove NAME`. "
            "`scan` exits with status 2, removing nothing, when a library's folder is missing, unreadable or suddenly empty.")

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        add = sub.add_parser("add", help="add a folder as a library (prints its id); then scan it")
        add.add_argument("path")
        add.add_argument("--name", help="default: the folder's name")
        sub.add_parser("list", help="libraries, their state, counts and last scan")
        scan = sub.add_parser("scan", help="scan libraries now (a progress bar, then what changed)")
        scan.add_argument("names", nargs="*", metavar="NAME")
        scan.add_argument("--all", action="store_true", help="every library")
        remove = sub.add_parser("remove", help="drop a library's images from the app; no file is touched")
        remove.add_argument("name")

    def handle(self, action, **options):
        getattr(self, f"do_{action}")(**options)

    def _get(self, name) -> Library:
        library = Library.objects.filter(name=name).first()
        if library is None and name.isdigit():
            library = Library.objects.filter(pk=int(name)).first()
        if library is None:
            raise CommandError(f"no library named {name!r} (see `library list`)")
        return library

    def do_add(self, path, name=None, **_):
        try:
            library = libraries.add_library(path, name)
        except libraries.LibraryError as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"added library {library.name!r} at {library.root}; "
                          f"`manage.py library scan {library.name}` indexes it (workers also do, periodically)")
        self.stdout.write(str(library.pk))

    def do_list(self, **_):
        rows = libraries.with_counts()
        if not rows:
            self.stdout.write("no libraries; add one with `manage.py library add PATH`")
        for lib in rows:
            last = lib.last_scan_finished_at.isoformat(timespec="seconds") if lib.last_scan_finished_at else "never"
            self.stdout.write(f"{lib.pk}\t{lib.name}\t{lib.root}\t{lib.state}\t{lib.image_count} images "
                              f"({lib.indexed_count} indexed, {lib.pending_count} pending, {lib.failed_count} failed)\t"
                              f"last scan {last}" + (f"\t{lib.message}" if lib.message else ""))

    def do_scan(self, names=(), all=False, **_):
        if all == bool(names):
            raise CommandError("name the libraries to scan, or give --all")
        targets = list(Library.objects.all()) if all else [self._get(n) for n in names]
        refused = False
        for library in targets:
            def bar(total, library=library):
                return tqdm(total=total, desc=f"scanning {library.name}", unit="file", disable=None, file=sys.stderr)
            try:
                report = libraries.run_scan(library, progress=bar)
            except libraries.ScanBusy as exc:
                raise CommandError(str(exc)) from None
            if "refused" in report:
                refused = True
                self.stderr.write(f"{library.name}: refused: {report['refused']}")
                continue
            self._print_report(library, report)
        if refused:
            sys.exit(2)

    def _print_report(self, library, report):
        c = report["counts"]
        touched = f" ({c['touched']} touched: same content, new mtime)" if c["touched"] else ""
        self.stdout.write(f"{library.name}: added {c['added']}, changed {c['changed']}, moved {c['moved']}, "
                          f"removed {c['removed']}, unchanged {c['unchanged']}{touched}, unreadable {c['unreadable']}, "
                          f"duplicates {c['duplicates']}")
        for path, reason in report["skipped"][:SHOWN_SKIPS]:
            self.stdout.write(f"  skipped {path}: {reason}")
        more = report["skipped_total"] - min(SHOWN_SKIPS, len(report["skipped"]))
        if more > 0:
            self.stdout.write(f"  … and {more} more (the admin lists the first {len(report['skipped'])})")

    def do_remove(self, name, **_):
        library = self._get(name)
        n = libraries.remove_library(library)
        self.stdout.write(f"removed library {library.name!r} and its {n} images from the app; no file was touched")
