# Full-text search over OCR text, file names, library paths and cameras (issue 14).
#
# Image.keywords holds that text normalised by embeddings.search.keywords (lower case, accents
# stripped), so each database only needs an index for substring matches:
# - PostgreSQL: pg_trgm's GIN index serves `keywords LIKE '%word%'` (partial words, numbers);
# - SQLite: an FTS5 table with the trigram tokenizer (SQLite >= 3.34), rowid = image id, kept in
#   step by triggers; a quoted MATCH string is a substring match.
from django.db import migrations, models

PG_FORWARD = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS embeddings_image_keywords_trgm ON embeddings_image USING gin (keywords gin_trgm_ops)",
]
PG_BACKWARD = ["DROP INDEX IF EXISTS embeddings_image_keywords_trgm"]

SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS embeddings_image_fts USING fts5(keywords, tokenize='trigram')",
    "INSERT INTO embeddings_image_fts(rowid, keywords) SELECT id, keywords FROM embeddings_image",
    """CREATE TRIGGER IF NOT EXISTS embeddings_image_fts_ins AFTER INSERT ON embeddings_image BEGIN
         INSERT INTO embeddings_image_fts(rowid, keywords) VALUES (new.id, new.keywords); END""",
    """CREATE TRIGGER IF NOT EXISTS embeddings_image_fts_upd AFTER UPDATE OF keywords ON embeddings_image BEGIN
         UPDATE embeddings_image_fts SET keywords = new.keywords WHERE rowid = old.id; END""",
    """CREATE TRIGGER IF NOT EXISTS embeddings_image_fts_del AFTER DELETE ON embeddings_image BEGIN
         DELETE FROM embeddings_image_fts WHERE rowid = old.id; END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS embeddings_image_fts_ins",
    "DROP TRIGGER IF EXISTS embeddings_image_fts_upd",
    "DROP TRIGGER IF EXISTS embeddings_image_fts_del",
    "DROP TABLE IF EXISTS embeddings_image_fts",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql)
    return run


def fill_keywords(apps, schema_editor):
    """Existing images get their keyword text (names and paths; OCR text comes later)."""
    from embeddings.search.keywords import document

    Image = apps.get_model("embeddings", "Image")
    for image in Image.objects.only("id", "original_filename", "path", "camera_make", "camera_model", "ocr_text").iterator():
        Image.objects.filter(pk=image.pk).update(keywords=document(image))


class Migration(migrations.Migration):
    dependencies = [("embeddings", "0002_libraries_photo_facts_ocr")]
    operations = [
        migrations.AddField("image", "keywords", models.TextField(blank=True, default="", editable=False)),
        migrations.RunPython(fill_keywords, migrations.RunPython.noop),
        migrations.RunPython(_run({"postgresql": PG_FORWARD, "sqlite": SQLITE_FORWARD}),
                             _run({"postgresql": PG_BACKWARD, "sqlite": SQLITE_BACKWARD})),
    ]
