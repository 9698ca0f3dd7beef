"""Admin pages of the catalogue."""

from __future__ import annotations

from django.contrib import admin

from catalog.models import Author, Book, Review, Tag


@admin.register(Author)
class AuthorAdmin(admin.ModelAdmin):
    """Authors, searchable by name."""

    list_display = ("name", "country")
    search_fields = ("name",)


@admin.register(Book)
class BookAdmin(admin.ModelAdmin):
    """Books with their authors joined (``list_select_related``)."""

    list_display = ("title", "author", "published_on", "price", "stock")
    list_select_related = ("author",)
    raw_id_fields = ("author",)
    search_fields = ("title", "isbn")


admin.site.register(Tag)
admin.site.register(Review, raw_id_fields=["book"])
