"""The catalogue's querysets, shared by the views and by ``manage.py explain_planted``.

Each function returns exactly the queryset a view evaluates, so the plans written to
``data/sample/postgres/explain`` are the plans of the statements in the logs.
"""

from __future__ import annotations

from django.db.models import Avg, Count, QuerySet

from catalog.models import Book, Review

__all__ = [
    "LIST_SIZE",
    "book_with_author",
    "books_tagged",
    "catalogue_page",
    "new_arrivals",
    "rating_summary",
    "recent_reviews",
]

#: books on one list page
LIST_SIZE = 40


def new_arrivals(limit: int = LIST_SIZE) -> QuerySet[Book]:
    """The newest books — and nothing else: P1/P2 templates then reach for author and reviews."""
    return Book.objects.order_by("-published_on", "id")[:limit]


def books_tagged(slug: str, limit: int = 30) -> QuerySet[Book]:
    """Newest books with tag ``slug``, authors joined (P3: but not their other tags)."""
    return (
        Book.objects.filter(tags__slug=slug)
        .select_related("author")
        .order_by("-published_on", "id")[:limit]
    )


def catalogue_page(limit: int = LIST_SIZE) -> QuerySet[Book]:
    """The control: the same newest books with author, tags and reviews in three statements."""
    return (
        Book.objects.select_related("author")
        .prefetch_related("tags", "reviews")
        .order_by("-published_on", "id")[:limit]
    )


def book_with_author(pk: int) -> QuerySet[Book]:
    """One book and its author, in one statement."""
    return Book.objects.select_related("author").filter(pk=pk)


def recent_reviews(book_id: int, limit: int = 10) -> QuerySet[Review]:
    """The newest reviews of one book."""
    return Review.objects.filter(book_id=book_id).order_by("-created_at")[:limit]


def rating_summary(book_id: int) -> dict[str, float | int | None]:
    """Average rating and number of reviews of one book (cached by the detail view)."""
    return Review.objects.filter(book_id=book_id).aggregate(
        average=Avg("rating"), reviews=Count("id")
    )
