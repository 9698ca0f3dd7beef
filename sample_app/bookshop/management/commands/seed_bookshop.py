"""``manage.py seed_bookshop``: fill an empty, migrated database with a deterministic catalogue.

Enough rows for the planner to care (at ``--scale 1``: 20 000 books, 120 000 reviews,
100 000 customers, 150 000 orders, ~300 000 order lines), drawn from ``random.Random(seed)``
so two runs with the same seed and date write the same rows. Popularity is skewed (a few
books sell and get reviewed a lot), order statuses follow the fulfilment pipeline by age, and
dates are relative to today so "the last 30 days" always has sales.

Every person is obviously fictitious: ``Customer 42 <customer42@example.com>``, reviewers
``reader42``, authors assembled from invented name parts.

Rows go in with ``COPY`` (one statement per table, so the server log stays short); sequences
are reset afterwards the way ``sqlsequencereset`` does. Prints a JSON summary of the counts,
which the load generator uses to pick valid ids.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from catalog.models import Author, Book, Review, Tag
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.core.management.color import no_style
from django.db import connection, transaction
from django.utils import timezone
from orders.models import Customer, Order, OrderLine

TAGS = (
    "adventure",
    "art",
    "biography",
    "business",
    "children",
    "classics",
    "comics",
    "cookery",
    "crime",
    "drama",
    "economics",
    "education",
    "essays",
    "fantasy",
    "gardening",
    "health",
    "history",
    "horror",
    "humour",
    "languages",
    "law",
    "mathematics",
    "music",
    "nature",
    "philosophy",
    "photography",
    "poetry",
    "politics",
    "psychology",
    "religion",
    "romance",
    "science",
    "science-fiction",
    "self-help",
    "sport",
    "technology",
    "thriller",
    "travel",
    "true-crime",
    "young-adult",
)
_FIRST = (
    "Alder",
    "Brisa",
    "Corin",
    "Dara",
    "Emrys",
    "Fenna",
    "Galen",
    "Hesper",
    "Ilsa",
    "Jory",
    "Kestrel",
    "Liora",
    "Marek",
    "Nerys",
    "Orrin",
    "Perrin",
    "Quilla",
    "Rowan",
    "Sable",
    "Tamsin",
    "Ulric",
    "Vesna",
    "Wren",
    "Xanthe",
    "Yorick",
    "Zinnia",
)
_LAST = (
    "Ashgrove",
    "Brambleby",
    "Coldwater",
    "Dunmere",
    "Emberlane",
    "Foxhollow",
    "Greyfield",
    "Hawkridge",
    "Ivydale",
    "Juniperly",
    "Kettlewell",
    "Larkspur",
    "Mossbank",
    "Nettleford",
    "Oakhurst",
    "Pebbleton",
    "Quarrington",
    "Rookwood",
    "Stonebridge",
    "Thistlewood",
    "Umberfield",
    "Vellacott",
    "Willowmere",
    "Yarrowby",
    "Zephyrine",
)
_WORDS = (
    "Silent",
    "Harbour",
    "Winter",
    "Garden",
    "Clockwork",
    "River",
    "Glass",
    "Lantern",
    "Forgotten",
    "Northern",
    "Salt",
    "Paper",
    "Iron",
    "Summer",
    "Hidden",
    "Orchard",
    "Midnight",
    "Copper",
    "Distant",
    "Shore",
    "Crimson",
    "Library",
    "Hollow",
    "Star",
    "Wild",
    "Kingdom",
    "Last",
    "Little",
    "House",
    "Map",
    "Ember",
    "Tide",
    "Velvet",
    "Mountain",
    "Secret",
    "Bridge",
)
_CITIES = (
    "Amsterdam",
    "Barcelona",
    "Bristol",
    "Dublin",
    "Edinburgh",
    "Ghent",
    "Leeds",
    "Lisbon",
    "Lyon",
    "Manchester",
    "Porto",
    "Rotterdam",
    "Utrecht",
    "Valencia",
    "York",
)
_COUNTRIES = ("GB", "IE", "NL", "BE", "FR", "ES", "PT", "DE", "US", "CA")
_SENTENCES = (
    "A quiet book that stays with you.",
    "The middle drags, the ending makes up for it.",
    "Beautifully written.",
    "Not what the cover promised.",
    "I read it in one sitting.",
    "The characters felt real.",
    "Too long by a hundred pages.",
    "Funny and sharp.",
    "A gift for my brother; he loved it.",
    "Solid, if predictable.",
)

BASE = {
    "authors": 2_000,
    "books": 20_000,
    "reviews": 120_000,
    "customers": 100_000,
    "orders": 150_000,
}


class Command(BaseCommand):
    help = "Fill an empty, migrated database with the deterministic sample catalogue and orders."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument("--scale", type=float, default=1.0, help="multiply every row count")

    def handle(self, *args: Any, **options: Any) -> None:
        if Book.objects.exists() or Customer.objects.exists():
            raise CommandError("the database already holds books or customers; seed an empty one")
        counts = {k: max(1, int(v * options["scale"])) for k, v in BASE.items()}
        rng = random.Random(options["seed"])
        today = timezone.now().astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        with transaction.atomic():
            summary = _Seeder(rng, today, counts).run()
        self.stdout.write(json.dumps(summary, sort_keys=True))


def _isbn13(n: int) -> str:
    body = f"978{n:09d}"
    check = (10 - sum((3 if i % 2 else 1) * int(d) for i, d in enumerate(body)) % 10) % 10
    return body + str(check)


def _zipf_cum_weights(n: int, exponent: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**exponent) for rank in range(1, n + 1)))


class _Seeder:
    def __init__(self, rng: random.Random, today: dt.datetime, counts: dict[str, int]) -> None:
        self.rng = rng
        self.today = today
        self.counts = counts

    def copy(self, model: type[Any], columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        table = model._meta.db_table
        n = 0
        sql = f'COPY "{table}" ({", ".join(columns)}) FROM STDIN'
        # Django's cursor wraps psycopg's (.cursor); COPY is psycopg API
        with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
                n += 1
        return n

    def run(self) -> dict[str, Any]:
        rng, c = self.rng, self.counts
        self.copy(
            Tag,
            ["id", "name", "slug"],
            ((i, s.replace("-", " ").title(), s) for i, s in enumerate(TAGS, 1)),
        )
        self.copy(
            Author,
            ["id", "name", "country", "bio", "born"],
            (
                (
                    i,
                    f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
                    rng.choice(_COUNTRIES),
                    "",
                    dt.date(1930, 1, 1) + dt.timedelta(days=rng.randrange(25_000))
                    if rng.random() < 0.8
                    else None,
                )
                for i in range(1, c["authors"] + 1)
            ),
        )
        # prolific authors write many books
        author_weights = _zipf_cum_weights(c["authors"], 0.6)
        authors = rng.choices(range(1, c["authors"] + 1), cum_weights=author_weights, k=c["books"])
        prices: list[Decimal] = []
        published: list[dt.date] = []
        books = []
        for i in range(1, c["books"] + 1):
            price = Decimal(rng.randrange(499, 4999)) / 100
            day = self.today.date() - dt.timedelta(days=int(rng.expovariate(1 / 1500)) % 7300)
            prices.append(price)
            published.append(day)
            title = " ".join(rng.sample(_WORDS, rng.choice((2, 3, 3, 4))))
            books.append(
                (
                    i,
                    f"The {title}",
                    authors[i - 1],
                    _isbn13(i),
                    price,
                    rng.randrange(80, 900),
                    rng.randrange(0, 60),
                    day,
                    "",
                )
            )
        self.copy(
            Book,
            [
                "id",
                "title",
                "author_id",
                "isbn",
                "price",
                "pages",
                "stock",
                "published_on",
                "description",
            ],
            books,
        )
        tag_weights = _zipf_cum_weights(len(TAGS), 0.7)
        book_tags = []
        for book_id in range(1, c["books"] + 1):
            chosen = set(
                rng.choices(range(1, len(TAGS) + 1), cum_weights=tag_weights, k=rng.randrange(1, 6))
            )
            book_tags += [(book_id, tag_id) for tag_id in sorted(chosen)]
        through = Book.tags.through
        self.copy(
            through,
            ["id", "book_id", "tag_id"],
            ((i, b, t) for i, (b, t) in enumerate(book_tags, 1)),
        )

        # popular books: a few get most reviews and most sales
        popularity = _zipf_cum_weights(c["books"], 0.9)
        rng_books = range(1, c["books"] + 1)
        reviewed = rng.choices(rng_books, cum_weights=popularity, k=c["reviews"])
        reviews = []
        for i, book_id in enumerate(reviewed, 1):
            start = dt.datetime.combine(published[book_id - 1], dt.time(), dt.UTC)
            span = max(1.0, (self.today - start).total_seconds())
            created = start + dt.timedelta(seconds=rng.random() * span)
            rating = rng.choices((1, 2, 3, 4, 5), weights=(5, 7, 18, 35, 35))[0]
            body = " ".join(rng.choices(_SENTENCES, k=rng.randrange(1, 5)))
            reviews.append(
                (
                    i,
                    book_id,
                    f"reader{rng.randrange(1, 30_000)}",
                    rating,
                    rng.choice(_SENTENCES)[:-1],
                    body,
                    created,
                )
            )
        self.copy(
            Review,
            ["id", "book_id", "reviewer_name", "rating", "title", "body", "created_at"],
            reviews,
        )

        self.copy(
            Customer,
            ["id", "email", "name", "city", "created_at"],
            (
                (
                    i,
                    f"customer{i}@example.com",
                    f"Customer {i}",
                    rng.choice(_CITIES),
                    self.today - dt.timedelta(seconds=rng.randrange(3 * 365 * 86400)),
                )
                for i in range(1, c["customers"] + 1)
            ),
        )

        orders, lines = [], []
        line_id = 0
        statuses: dict[str, int] = {}
        # ids grow with time, as they do in a live shop: the newest orders have the highest ids
        ages = sorted(
            (dt.timedelta(seconds=rng.random() * 730 * 86400) for _ in range(c["orders"])),
            reverse=True,
        )
        for order_id, age in enumerate(ages, 1):
            status = _status_for(age, rng)
            statuses[status] = statuses.get(status, 0) + 1
            total = Decimal(0)
            picks = rng.choices(
                rng_books, cum_weights=popularity, k=rng.choice((1, 1, 2, 2, 2, 3, 4))
            )
            for book_id in dict.fromkeys(picks):
                line_id += 1
                qty = rng.choice((1, 1, 1, 1, 2, 3))
                total += prices[book_id - 1] * qty
                lines.append((line_id, order_id, book_id, qty, prices[book_id - 1]))
            created = self.today - age
            confirmed = (
                None
                if status in ("pending", "cancelled")
                else created + dt.timedelta(minutes=rng.randrange(1, 90))
            )
            orders.append(
                (order_id, rng.randrange(1, c["customers"] + 1), status, created, total, confirmed)
            )
        self.copy(
            Order, ["id", "customer_id", "status", "created_at", "total", "confirmed_at"], orders
        )
        self.copy(OrderLine, ["id", "order_id", "book_id", "quantity", "unit_price"], lines)

        models = [Tag, Author, Book, through, Review, Customer, Order, OrderLine]
        with connection.cursor() as cursor:
            for sql in connection.ops.sequence_reset_sql(no_style(), models):
                cursor.execute(sql)
        return {
            "tags": list(TAGS),
            "authors": c["authors"],
            "books": c["books"],
            "book_tags": len(book_tags),
            "reviews": c["reviews"],
            "customers": c["customers"],
            "orders": c["orders"],
            "order_lines": len(lines),
            "orders_by_status": dict(sorted(statuses.items())),
        }


def _status_for(age: dt.timedelta, rng: random.Random) -> str:
    """Where an order of this age stands in the pipeline; a few carts are abandoned as pending."""
    days = age.total_seconds() / 86400
    r = rng.random()
    s = Order.Status
    if r < 0.01:
        status = s.PENDING  # abandoned: never paid, never cleaned up
    elif r < 0.05:
        status = s.CANCELLED
    elif days < 2:
        status = s.PENDING if r < 0.6 else s.PAID
    elif days < 5:
        status = s.PAID if r < 0.3 else s.SHIPPED
    elif days < 12:
        status = s.SHIPPED if r < 0.5 else s.DELIVERED
    else:
        status = s.DELIVERED
    return status.value  # a plain str: COPY must not see the enum
