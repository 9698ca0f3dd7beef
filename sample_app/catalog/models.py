"""The catalogue: authors, books, tags and reviews.

Planted here (see ``PLANTED.md``): P6, an index nobody uses (``catalog_book_pages_idx``);
P7, a duplicate of the unique constraint's index (``catalog_book_isbn_idx``). The revisit release
(``BOOKSHOP_VARIANT=revisit``) has dropped P6's index (``catalog/migrations_revisit/0002``).
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

#: the revisit release of the shop (PLANTED.md, "Revisit")
REVISIT = settings.VARIANT == "revisit"


class Author(models.Model):
    """A writer; has many books."""

    name = models.CharField(max_length=120)
    country = models.CharField(max_length=2)
    bio = models.TextField(blank=True)
    born = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    """A subject (``fantasy``, ``cookery``…); books have several."""

    name = models.CharField(max_length=60, unique=True)
    slug = models.SlugField(max_length=60, unique=True)

    class Meta:
        ordering = ("name",)

    def __str__(self) -> str:
        return self.name


class Book(models.Model):
    """A title in the catalogue."""

    title = models.CharField(max_length=200)
    author = models.ForeignKey(Author, on_delete=models.PROTECT, related_name="books")
    tags = models.ManyToManyField(Tag, related_name="books", blank=True)
    isbn = models.CharField(max_length=13, unique=True)
    price = models.DecimalField(max_digits=8, decimal_places=2)
    pages = models.PositiveIntegerField()
    stock = models.PositiveIntegerField(default=0)
    published_on = models.DateField()
    description = models.TextField(blank=True)

    class Meta:
        indexes = (
            # P6: nothing ever filters or sorts on pages — written for a report never built
            models.Index(fields=["pages"], name="catalog_book_pages_idx"),
            # P7: isbn is unique already; its constraint has the very same btree(isbn)
            models.Index(fields=["isbn"], name="catalog_book_isbn_idx"),
            # the new-arrivals lists sort on it
            models.Index(fields=["-published_on"], name="catalog_book_published_idx"),
        )
        if REVISIT:  # P6 fixed in the revisit release: the index on pages is dropped
            indexes = tuple(i for i in indexes if i.name != "catalog_book_pages_idx")

    def __str__(self) -> str:
        return self.title


class Review(models.Model):
    """A reader's review of a book."""

    book = models.ForeignKey(Book, on_delete=models.CASCADE, related_name="reviews")
    reviewer_name = models.CharField(max_length=80)
    rating = models.PositiveSmallIntegerField()
    title = models.CharField(max_length=120)
    body = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        ordering = ("-created_at",)

    def __str__(self) -> str:
        return f"{self.rating}/5 for book {self.book_id}"
