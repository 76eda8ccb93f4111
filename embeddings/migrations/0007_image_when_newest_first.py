import django.db.models.functions.comparison
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("embeddings", "0006_keyword_index_without_pending_list")]
    operations = [
        migrations.AddIndex(
            model_name="image",
            index=models.Index(
                django.db.models.functions.comparison.Coalesce("taken_at", "uploaded_at").desc(),
                models.F("id").desc(),
                name="image_when_newest_first",
            ),
        ),
    ]
