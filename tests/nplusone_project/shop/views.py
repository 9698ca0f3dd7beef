"""Three N+1 views (forward FK, reverse FK, M2M) and a control that does it right."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse

from shop.models import Book


def books_with_authors(request: HttpRequest) -> JsonResponse:
    # forward FK N+1: book.author in a loop without select_related
    return JsonResponse({"books": [[b.title, b.author.name] for b in Book.objects.order_by("id")]})


def books_with_reviews(request: HttpRequest) -> JsonResponse:
    # reverse FK N+1: book.reviews.all() in a loop without prefetch_related
    return JsonResponse({"books": [[b.title, [r.text for r in b.reviews.all()]] for b in Book.objects.order_by("id")]})


def books_with_tags(request: HttpRequest) -> JsonResponse:
    # many-to-many N+1: book.tags.all() in a loop
    return JsonResponse({"books": [[b.title, [t.name for t in b.tags.all()]] for b in Book.objects.order_by("id")]})


def books_done_right(request: HttpRequest) -> JsonResponse:
    # the control: everything loaded up front, a fixed number of queries
    books = Book.objects.select_related("author").prefetch_related("reviews", "tags").order_by("id")
    return JsonResponse({"books": [[b.title, b.author.name, [r.text for r in b.reviews.all()], [t.name for t in b.tags.all()]] for b in books]})
