import time

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from embeddings import services
from embeddings.clip.config import model_key
from embeddings.search import model_switch


class Command(BaseCommand):
    help = ("Queue every image that lacks an embedding for the model (default: the current one). Searches keep "
            "answering with the previous model's vectors until this one covers the library.")

    def add_arguments(self, parser):
        parser.add_argument("--model", default=None, help="must be the model this process runs (CLIP_MODEL_NAME)")
        parser.add_argument("--wait", action="store_true", help="show progress until the workers have encoded every image")

    def handle(self, model, wait, **options):
        if model and model_key(model) != settings.MODEL_KEY:
            raise CommandError(f"--model {model} differs from CLIP_MODEL_NAME ({settings.MODEL_KEY}): the workers encode "
                               "with CLIP_MODEL_NAME, so set that and restart them")
        n = services.enqueue_missing(settings.MODEL_KEY)
        self.stdout.write(f"{n} images queued for {settings.MODEL_KEY}")
        if wait:
            covered, total = model_switch.coverage(settings.MODEL_KEY)
            with tqdm(total=total, initial=covered, desc=f"encoding for {settings.MODEL_KEY}", unit="img") as bar:
                while covered < total:
                    time.sleep(1)
                    covered, total = model_switch.coverage(settings.MODEL_KEY)
                    bar.total, bar.n = total, covered
                    bar.refresh()
            self.stdout.write(f"{covered} of {total} images encoded for {settings.MODEL_KEY}; searches use it now")
