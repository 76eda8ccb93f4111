# The keyword index (0003) on PostgreSQL writes each insert into the index itself (fastupdate off).
#
# With GIN's default fastupdate, new rows wait in an unsorted "pending list" (up to 4 MB) that every
# lookup scans in full until a vacuum or the list's limit merges it: at 100k images, just after an
# import, each word of a query cost 1.8-2.8 ms in the index instead of 0.01 (bench/serve.py), and a
# library that keeps ingesting always has such a list. Inserts pay a little more instead (a few
# index pages per image, against an encode of ~20 ms). gin_clean_pending_list merges what is there.
from django.db import migrations

FORWARD = [
    "ALTER INDEX IF EXISTS embeddings_image_keywords_trgm SET (fastupdate = off)",
    "SELECT gin_clean_pending_list('embeddings_image_keywords_trgm'::regclass)",
]
BACKWARD = ["ALTER INDEX IF EXISTS embeddings_image_keywords_trgm RESET (fastupdate)"]


def _on_postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for sql in statements:
                schema_editor.execute(sql)
    return run


class Migration(migrations.Migration):
    dependencies = [("embeddings", "0005_duplicates")]
    operations = [migrations.RunPython(_on_postgresql(FORWARD), _on_postgresql(BACKWARD))]
