from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from embeddings import services
from embeddings.clip.config import model_key


class Command(BaseCommand):
    help = "Queue every indexed image that lacks an embedding for the model (default: the current one)."

    def add_arguments(self, parser):
        parser.add_argument("--model", default=None, help="must be the model this process runs (CLIP_MODEL_NAME)")

    def handle(self, model, **options):
        if model and model_key(model) != settings.MODEL_KEY:
            raise CommandError(f"--model {model} differs from CLIP_MODEL_NAME ({settings.MODEL_KEY}): the workers encode "
                               "with CLIP_MODEL_NAME, so set that and restart them")
        n = services.enqueue_missing(settings.MODEL_KEY)
        self.stdout.write(f"{n} images queued for {settings.MODEL_KEY}")
