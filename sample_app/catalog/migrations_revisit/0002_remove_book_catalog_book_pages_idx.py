"""Revisit release: P6 fixed — the index on ``pages`` nothing used is dropped."""

from django.db import migrations


class Migration(migrations.Migration):
    # tuples: Django copies both into lists of its own
    dependencies = (("catalog", "0001_initial"),)

    operations = (
        migrations.RemoveIndex(
            model_name="book",
            name="catalog_book_pages_idx",
        ),
    )
