import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "clipsearch.settings")
application = get_wsgi_application()

if os.environ.get("CLIPSEARCH_WARMUP", "true").lower() not in ("0", "false", "no", "off"):
    # Model and index load once per web process, now, not on the first request.
    from embeddings.selectors import warm_up

    warm_up()
