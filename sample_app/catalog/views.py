"""Catalogue pages. P1, P2 and P3 of ``PLANTED.md`` live here; ``catalogue`` is the control.

The N+1 problems are not in this file's code but in what the templates touch: a template
that reads ``book.author.name`` or loops over ``book.reviews.all`` runs one statement per book
unless the queryset joined or prefetched that relation. That is how they hide in real
projects, and why they are found in query logs rather than in code review.
"""

from __future__ import annotations

from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from catalog import queries
from catalog.models import Tag

#: how long a book's rating summary stays cached, seconds
RATING_TTL_S = 120


def home(request: HttpRequest) -> HttpResponse:
    """A landing page with the ten newest books (joined with their authors: one statement)."""
    books = queries.new_arrivals(10).select_related("author")
    return render(request, "catalog/home.html", {"books": books})


def book_list(request: HttpRequest) -> HttpResponse:
    """P1 — forward-FK N+1: the template prints ``book.author.name`` for 40 books."""
    return render(request, "catalog/book_list.html", {"books": queries.new_arrivals()})


def books_with_reviews(request: HttpRequest) -> HttpResponse:
    """P2 — reverse-FK N+1: the template loops over ``book.reviews.all`` for 40 books."""
    return render(request, "catalog/books_with_reviews.html", {"books": queries.new_arrivals()})


def books_by_tag(request: HttpRequest, slug: str) -> HttpResponse:
    """P3 — many-to-many N+1: each of the 30 books lists all its tags (``book.tags.all``)."""
    tag = Tag.objects.filter(slug=slug).first()
    if tag is None:
        raise Http404(f"no tag {slug!r}")
    return render(
        request, "catalog/books_by_tag.html", {"tag": tag, "books": queries.books_tagged(slug)}
    )


def catalogue(request: HttpRequest) -> HttpResponse:
    """The control: authors, tags and reviews of 40 books in three statements — no N+1."""
    return render(request, "catalog/catalogue.html", {"books": queries.catalogue_page()})


def book_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """One book: joined author, its tags, ten reviews, and a rating summary from the cache.

    The summary is an aggregate over the book's reviews, kept in Redis for ``RATING_TTL_S``:
    popular books hit, the long tail misses.
    """
    book = queries.book_with_author(pk).first()
    if book is None:
        raise Http404(f"no book {pk}")
    key = f"book:{pk}:rating"
    summary = cache.get(key)
    if summary is None:
        summary = queries.rating_summary(pk)
        cache.set(key, summary, RATING_TTL_S)
    context = {
        "book": book,
        "tags": list(book.tags.all()),
        "reviews": list(queries.recent_reviews(pk)),
        "summary": summary,
    }
    return render(request, "catalog/book_detail.html", context)
