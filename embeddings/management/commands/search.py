from django.core.management.base import BaseCommand, CommandError

from embeddings.search import selectors


class Command(BaseCommand):
    help = "Search the images by text and print the results, best first."

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("-k", type=int, default=10)

    def handle(self, query, k, **options):
        if not 1 <= k <= selectors.MAX_K:
            raise CommandError(f"-k must be between 1 and {selectors.MAX_K}")
        try:
            page = selectors.search(selectors.query_vector(query), k=k)
        except selectors.BadQuery as exc:
            raise CommandError(str(exc)) from None
        for hit in page.hits:
            self.stdout.write(f"{hit.score:.4f}  #{hit.image.pk}  {hit.image.original_filename}")
        if not page.hits:
            self.stdout.write("no results")
