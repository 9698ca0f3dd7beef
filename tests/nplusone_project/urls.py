from __future__ import annotations

from django.urls import path
from shop import views

urlpatterns = [
    path("books/authors/", views.books_with_authors, name="books-authors"),
    path("books/reviews/", views.books_with_reviews, name="books-reviews"),
    path("books/tags/", views.books_with_tags, name="books-tags"),
    path("books/good/", views.books_done_right, name="books-good"),
]
