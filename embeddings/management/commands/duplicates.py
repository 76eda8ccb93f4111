"""manage.py duplicates [--tier exact|same|similar] [--json] [--full-pass]: print the duplicate
groups (largest first; --json: the API's list), after a full pass when asked (after a model switch,
or to start over)."""
import json

from django.core.management.base import BaseCommand

from embeddings.duplicates import review, store
from embeddings.models import Image


class Command(BaseCommand):
    help = "Print the duplicate groups of a tier, largest first (--json: the API's list)."

    def add_arguments(self, parser):
        parser.add_argument("--tier", choices=review.TIERS, default="same")
        parser.add_argument("--json", dest="as_json", action="store_true", help="print the groups as the API's JSON list")
        parser.add_argument("--full-pass", action="store_true",
                            help="hash the images that lack it and find every pair anew first")

    def handle(self, tier, as_json, full_pass, **options):
        if full_pass:
            done = store.full_pass(progress=lambda n, total: self.stderr.write(f"\rhashed {n}/{total}", ending=""))
            self.stderr.write(f"\nfull pass: {done['images']} images, {done['pairs']} pairs")
        groups = review.groups(tier)
        if as_json:
            self.stdout.write(json.dumps(groups))
            return
        names = dict(Image.objects.filter(pk__in=[i for g in groups for i in g["images"]])
                     .values_list("pk", "original_filename"))
        for g in groups:
            line = ", ".join(f"#{i} {names.get(i, '')}".strip() + (" (best)" if i == g["best"] else "") for i in g["images"])
            paths = f"; same bytes at {', '.join(g['paths'])}" if g.get("paths") else ""
            self.stdout.write(f"{g['tier']} ({len(g['images']) + len(g.get('paths', []))}): {line}{paths}")
        if not groups:
            self.stdout.write("no groups")
