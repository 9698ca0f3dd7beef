"""Catalogue URLs, mounted under ``/books/``."""

from __future__ import annotations

from django.urls import path

from catalog import views

app_name = "catalog"

urlpatterns = [
    path("", views.book_list, name="book_list"),  # P1
    path("reviews/", views.books_with_reviews, name="books_with_reviews"),  # P2
    path("tags/<slug:slug>/", views.books_by_tag, name="books_by_tag"),  # P3
    path("catalogue/", views.catalogue, name="catalogue"),  # control
    path("<int:pk>/", views.book_detail, name="book_detail"),  # cached rating summary
]
