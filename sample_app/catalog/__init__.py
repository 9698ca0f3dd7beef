"""The catalogue app: authors, books, tags, reviews and their pages."""
