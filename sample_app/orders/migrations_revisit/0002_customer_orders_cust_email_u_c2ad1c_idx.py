"""Revisit release: P4 fixed — the case-insensitive e-mail look-up gets its expression index."""

import django.db.models.functions.text
from django.db import migrations, models


class Migration(migrations.Migration):
    # tuples: Django copies both into lists of its own
    dependencies = (("orders", "0001_initial"),)

    operations = (
        migrations.AddIndex(
            model_name="customer",
            index=models.Index(
                django.db.models.functions.text.Upper("email"),
                name="orders_cust_email_u_c2ad1c_idx",
            ),
        ),
    )
