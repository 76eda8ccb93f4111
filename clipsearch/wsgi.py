import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clipsearch.settings")
application = get_wsgi_application()

# One FAISS thread per web process: single queries gain nothing from more, and its OpenMP pool
# fights torch's (measured: a 10k flat search took 23 ms with 2 threads, 2.3 ms with 1).
import faiss  # noqa: E402

faiss.omp_set_num_threads(1)

from django.conf import settings  # noqa: E402

if settings.WARMUP:
    # Model and index load once per web process, now, not on the first request.
    from embeddings.search.selectors import warm_up

    warm_up()
