"""Route templates inferred from paths, and endpoints attributed across sources."""

from __future__ import annotations

from auditkit.endpoints import route_templates


def test_ids_and_slugs() -> None:
    paths = ["/books/1/", "/books/22/", "/books/", "/orders/7/confirm/",
             "/u/0b5f9a3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c/", "/books/tags/a/", "/books/tags/b/",
             "/books/tags/c/", "/books/tags/d/", "/books/tags/e/", "/books/tags/f/", "/about/", "/help/", "/b/<slug>/"]
    m = route_templates(paths)
    assert m["/books/22/"] == "/books/<int>/" and m["/books/"] == "/books/"
    assert m["/orders/7/confirm/"] == "/orders/<int>/confirm/"
    assert m["/u/0b5f9a3c-1d2e-4f5a-9b8c-7d6e5f4a3b2c/"] == "/u/<uuid>/"
    assert m["/books/tags/f/"] == "/books/tags/<slug>/"
    assert m["/about/"] == "/about/" and m["/help/"] == "/help/"  # a few fixed words stay
    assert m["/b/<slug>/"] == "/b/<slug>/"  # already a route


def test_query_string_and_names() -> None:
    m = route_templates(["/search/?q=x", "book-detail"])
    assert m["/search/?q=x"] == "/search/" and m["book-detail"] == "book-detail"
