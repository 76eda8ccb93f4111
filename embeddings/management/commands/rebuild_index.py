from django.conf import settings
from django.core.management.base import BaseCommand

from embeddings import selectors
from embeddings.index import get_index


class Command(BaseCommand):
    help = "Rebuild the FAISS index of the current model from the database and save it."

    def handle(self, **options):
        index = get_index(settings.MODEL_KEY, selectors.model_info()["embedding_dim"])
        index.rebuild()
        index.save()
        self.stdout.write(f"rebuilt {index.kind} index: {len(index.ids)} vectors -> {index.path}")
