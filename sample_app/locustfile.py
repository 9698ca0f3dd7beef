"""Locust traffic for the Sample Bookshop: a shopper mix and a stepped load that saturates.

``locust -f locustfile.py --headless --host http://127.0.0.1:8000 --csv load/locust``

Visitors mostly browse (new books, the catalogue, book pages, tag pages), some look
themselves up by e-mail, staff watch the fulfilment queue and the dashboard, and the checkout
service confirms recent orders. Ids are drawn with the same skew as the seeded data (popular
books first). :class:`StepLoad` doubles the users every ``BOOKSHOP_STEP_S`` seconds
(``BOOKSHOP_STEPS``, default ``4,8,16,32,64,128``); the last step is beyond what the two-worker
server can serve, so its response times climb while its throughput flattens.

Every request carries an ``X-Request-ID`` of its own, as a front proxy (nginx ``$request_id``)
would add: the shop's logs and auditkit's capture app all record that id, and gunicorn's access
log shows it (``rid=``). Each simulated user keeps its cookies (the shop's ``visitor`` cookie).
With ``BOOKSHOP_VARIANT=revisit`` staff also open the revisit release's recent-orders page.

Environment (written by ``scripts/make_sample.py`` from the seeding summary):
``BOOKSHOP_BOOKS``, ``BOOKSHOP_CUSTOMERS``, ``BOOKSHOP_ORDERS``, ``BOOKSHOP_TAGS`` (comma separated).
"""

from __future__ import annotations

import itertools
import os
import random
import uuid

from locust import HttpUser, LoadTestShape, between, task

BOOKS = int(os.environ.get("BOOKSHOP_BOOKS", "20000"))
CUSTOMERS = int(os.environ.get("BOOKSHOP_CUSTOMERS", "40000"))
ORDERS = int(os.environ.get("BOOKSHOP_ORDERS", "150000"))
TAGS = os.environ.get("BOOKSHOP_TAGS", "fantasy,crime,history,science,poetry").split(",")
STEPS = [int(u) for u in os.environ.get("BOOKSHOP_STEPS", "4,8,16,32,64,128").split(",")]
STEP_S = float(os.environ.get("BOOKSHOP_STEP_S", "15"))
REVISIT = os.environ.get("BOOKSHOP_VARIANT", "baseline") == "revisit"

_BOOK_WEIGHTS = list(itertools.accumulate(1.0 / (r**0.9) for r in range(1, BOOKS + 1)))
_TAG_WEIGHTS = list(itertools.accumulate(1.0 / (r**0.7) for r in range(1, len(TAGS) + 1)))
_rng = random.Random(int(os.environ.get("BOOKSHOP_LOAD_SEED", "7")))


def _email_as_typed(customer_id: int) -> str:
    """A customer's e-mail as people type it: lower case, capitalised, or shouting."""
    email = f"customer{customer_id}@example.com"
    style = _rng.random()
    if style < 0.5:
        return email
    if style < 0.85:
        return email.capitalize().replace("@example", "@Example")
    return email.upper()


def _rid() -> dict[str, str]:
    """A fresh request id header, as a front proxy sets one."""
    return {"X-Request-ID": uuid.uuid4().hex}


class Shopper(HttpUser):
    """One visitor or service of the shop; weights give the traffic mix."""

    wait_time = between(0.5, 1.5)

    @task(10)
    def new_books(self) -> None:  # P1
        self.client.get("/books/", name="/books/", headers=_rid())

    @task(6)
    def reviews(self) -> None:  # P2
        self.client.get("/books/reviews/", name="/books/reviews/", headers=_rid())

    @task(6)
    def tag_page(self) -> None:  # P3
        slug = _rng.choices(TAGS, cum_weights=_TAG_WEIGHTS)[0]
        self.client.get(f"/books/tags/{slug}/", name="/books/tags/[slug]/", headers=_rid())

    @task(10)
    def catalogue(self) -> None:  # control
        self.client.get("/books/catalogue/", name="/books/catalogue/", headers=_rid())

    @task(20)
    def book_page(self) -> None:  # P11: the rating summary, cached per book and visitor
        book = _rng.choices(range(1, BOOKS + 1), cum_weights=_BOOK_WEIGHTS)[0]
        self.client.get(f"/books/{book}/", name="/books/[id]/", headers=_rid())

    @task(8)
    def customer_lookup(self) -> None:  # P4
        customer = _rng.randrange(1, int(CUSTOMERS * 1.05))  # a few unknown addresses: 404
        with self.client.get(
            "/customers/lookup/",
            params={"email": _email_as_typed(customer)},
            name="/customers/lookup/",
            headers=_rid(),
            catch_response=True,
        ) as response:
            if response.status_code == 404:
                response.success()  # "no such customer" is an answer, not a failure

    @task(5)
    def fulfilment_queue(self) -> None:  # P5
        status = _rng.choices(["pending", "paid", "shipped"], weights=[6, 3, 1])[0]
        self.client.get(
            "/orders/queue/", params={"status": status}, name="/orders/queue/", headers=_rid()
        )

    @task(6)
    def bestsellers(self) -> None:  # P8, uncached
        self.client.get("/stats/bestsellers/", name="/stats/bestsellers/", headers=_rid())

    @task(6)
    def dashboard(self) -> None:  # cached
        self.client.get("/stats/dashboard/", name="/stats/dashboard/", headers=_rid())

    @task(3)
    def confirm_order(self) -> None:  # P9: e-mails through the SMTP relay, inline
        order = ORDERS - _rng.randrange(0, 400)  # the newest orders: many still pending
        self.client.post(f"/orders/{order}/confirm/", name="/orders/[id]/confirm/", headers=_rid())

    @task(5 if REVISIT else 0)
    def recent_orders(self) -> None:  # R1, the revisit release's new page
        self.client.get("/orders/recent/", name="/orders/recent/", headers=_rid())

    @task(1)
    def home(self) -> None:
        self.client.get("/", name="/", headers=_rid())


class StepLoad(LoadTestShape):
    """``STEPS`` users, each level held ``STEP_S`` seconds, spawned within a second or two."""

    def tick(self) -> tuple[int, float] | None:
        step = int(self.get_run_time() // STEP_S)
        if step >= len(STEPS):
            return None
        return STEPS[step], float(max(STEPS))
