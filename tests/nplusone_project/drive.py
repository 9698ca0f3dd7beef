"""Run the N+1 test project: migrate a fresh database, seed it, request every view.

Usage: python drive.py LOG_DIR   (AUDITKIT_NPLUSONE_DSN names the database to use)
Writes LOG_DIR/queries.log (plain Django log) and LOG_DIR/queries.jsonl (with request ids).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> None:
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    os.environ["AUDITKIT_NPLUSONE_LOGS"] = str(out)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
    sys.path.insert(0, str(HERE))
    import django

    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from shop.models import Author, Book, Review, Tag

    call_command("migrate", verbosity=0)
    tags = [Tag.objects.create(name=f"tag{i}") for i in range(6)]
    authors = [Author.objects.create(name=f"Author {i}") for i in range(8)]
    for i in range(12):
        book = Book.objects.create(title=f"Book {i}", author=authors[i % len(authors)])
        book.tags.set(tags[i % 3 : i % 3 + 2])
        for j in range(2):
            Review.objects.create(book=book, text=f"review {i}.{j}")
    # the audit looks at traffic, not at the set-up: start the logs empty
    for name in ("queries.log", "queries.jsonl"):
        (out / name).write_text("")
    client = Client()
    for _ in range(3):
        for url in ("/books/authors/", "/books/reviews/", "/books/tags/", "/books/good/"):
            time.sleep(0.4)  # think time: a plain query log is split into requests by gaps
            assert client.get(url).status_code == 200, url


if __name__ == "__main__":
    main()
