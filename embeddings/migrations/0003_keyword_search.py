# Full-text search over OCR text, file names, library paths and cameras (issue 14 fills this in).
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("embeddings", "0002_libraries_photo_facts_ocr")]
    operations = []
