"""Catalogue pages. P1, P2 and P3 of ``PLANTED.md`` live here; ``catalogue`` is the control.

The N+1 problems are not in this file's code but in what the templates touch: a template
that reads ``book.author.name`` or loops over ``book.reviews.all`` runs one statement per book
unless the queryset joined or prefetched that relation. That is how they hide in real
projects, and why they are found in query logs rather than in code review.

The revisit release (``settings.VARIANT == "revisit"``) has P1 fixed: the book list joins the
authors.
"""

from __future__ import annotations

import re
import uuid

from django.conf import settings
from django.core.cache import cache
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from catalog import queries
from catalog.models import Tag

#: how long a book's rating summary stays cached, seconds (P11: short, and per visitor)
RATING_TTL_S = 30
#: the cookie that tells visitors apart (set on the first book page a visitor opens)
VISITOR_COOKIE = "visitor"
_SANE_VISITOR = re.compile(r"^[0-9a-f]{16}$")


def home(request: HttpRequest) -> HttpResponse:
    """A landing page with the ten newest books (joined with their authors: one statement)."""
    books = queries.new_arrivals(10).select_related("author")
    return render(request, "catalog/home.html", {"books": books})


def book_list(request: HttpRequest) -> HttpResponse:
    """P1 — forward-FK N+1: the template prints ``book.author.name`` for 40 books.

    Fixed in the revisit release: the authors are joined (one statement).
    """
    books = queries.new_arrivals()
    if settings.VARIANT == "revisit":
        books = books.select_related("author")
    return render(request, "catalog/book_list.html", {"books": books})


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

    P11 — the summary (an aggregate over the book's reviews, the same for everyone) is cached
    per book *and visitor* (``book:<id>:rating:<visitor>``) for ``RATING_TTL_S``: a leftover of
    a page that once showed the visitor's own rating. Every visitor's first look at a book
    misses, and a visitor rarely opens the same book again within the TTL.
    """
    book = queries.book_with_author(pk).first()
    if book is None:
        raise Http404(f"no book {pk}")
    visitor = request.COOKIES.get(VISITOR_COOKIE, "")
    if not _SANE_VISITOR.match(visitor):
        visitor = uuid.uuid4().hex[:16]
    key = f"book:{pk}:rating:{visitor}"
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
    response = render(request, "catalog/book_detail.html", context)
    response.set_cookie(VISITOR_COOKIE, visitor, max_age=365 * 24 * 3600, samesite="Lax")
    return response
