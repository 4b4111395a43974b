"""The shop's own tests: ordinary inputs give the right rows.

They pass on the vulnerable code and must still pass once Jupiter has
parameterised its queries. The Django reports run on Django's sqlite3
backend, configured here (no Django project is needed).
"""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest

from shop import db, reports
from shop.web import make_app

PRODUCTS = [
    (1, "Blue mug", "kitchen", 1200, 10),
    (2, "Red mug", "kitchen", 1500, 0),
    (3, "Teapot", "kitchen", 3500, 4),
    (4, "Notebook", "office", 800, 25),
    (5, "Desk lamp", "office", 4200, 7),
]
CUSTOMERS = [
    (1, "Alice", "alice@example.com"),
    (2, "Bob", "bob@example.com"),
    (3, "Alice", "alice@corp.example"),
]
ORDERS = [(1, 1, 1, 2), (2, 1, 4, 5), (3, 2, 3, 1), (4, 3, 5, 3)]


def seed(execute):
    for table, rows in (("products", PRODUCTS), ("customers", CUSTOMERS), ("orders", ORDERS)):
        marks = ", ".join("?" * len(rows[0]))
        for row in rows:
            execute(f"INSERT INTO {table} VALUES ({marks})", row)


@pytest.fixture
def conn():
    conn = db.connect()
    seed(conn.execute)
    conn.commit()
    yield conn
    conn.close()


def test_product_by_name(conn):
    assert db.product_by_name(conn, "Blue mug") == (1, "Blue mug", 1200)
    assert db.product_by_name(conn, "Green mug") is None


def test_products_in_category(conn):
    assert db.products_in_category(conn, "kitchen") == [(3, "Teapot"), (2, "Red mug"), (1, "Blue mug")]
    assert db.products_in_category(conn, "garden") == []


def test_cheaper_in_category(conn):
    assert db.cheaper_in_category(conn, "kitchen", 1500) == [("Blue mug", 1200), ("Red mug", 1500)]
    assert db.cheaper_in_category(conn, "office", 100) == []


def test_search_products(conn):
    assert db.search_products(conn, "mug") == ["Blue mug", "Red mug"]
    assert db.search_products(conn, "lamp") == ["Desk lamp"]


def test_product_by_id(conn):
    assert db.product_by_id(conn, 2) == (2, "Red mug", 0)
    assert db.product_by_id(conn, 99) is None


def test_customer_by_email(conn):
    assert db.customer_by_email(conn, "bob@example.com") == (2, "Bob")
    assert db.customer_by_email(conn, "nobody@example.com") is None


def test_in_stock_page(conn):
    assert db.in_stock_page(conn, 5, 2) == [("Blue mug", 10), ("Notebook", 25)]


def test_orders_and_place_order(conn):
    assert db.orders_of(conn, "alice@example.com") == [(1, "Blue mug", 2), (2, "Notebook", 5)]
    new_id = db.place_order(conn, 2, 1, 3)
    assert new_id == 5
    assert db.orders_of(conn, "bob@example.com") == [(3, "Teapot", 1), (5, "Blue mug", 3)]


def test_rename_customer(conn):
    db.rename_customer(conn, 2, "Robert")
    assert db.customer_by_email(conn, "bob@example.com") == (2, "Robert")


def test_products_sorted_and_count(conn):
    assert [r[0] for r in db.products_sorted(conn, "price")] == ["Notebook", "Blue mug", "Red mug", "Teapot", "Desk lamp"]
    assert db.product_count(conn) == 5


def call(app, path, query=""):
    environ = {"PATH_INFO": path, "QUERY_STRING": query, "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    body = b"".join(app(environ, start_response))
    return seen["status"], json.loads(body)


def test_web_routes(conn):
    app = make_app(conn)
    assert call(app, "/products", "category=office") == ("200 OK", [[5, "Desk lamp"], [4, "Notebook"]])
    assert call(app, "/search", "q=tea") == ("200 OK", ["Teapot"])
    assert call(app, "/product", "id=3") == ("200 OK", [3, "Teapot", 4])
    assert call(app, "/sorted", "by=stock")[1][0] == "Red mug"
    assert call(app, "/sorted", "by=price;DROP")[0] == "404 Not Found"


# -- Django reports ----------------------------------------------------------

@pytest.fixture(scope="module")
def django_db():
    """Django on an in-memory sqlite3 database seeded like ``conn``, and a
    Customer model over its customers table."""
    django = pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            INSTALLED_APPS=[],
            USE_TZ=True,
        )
        django.setup()
    from django.db import connection, models

    class Customer(models.Model):
        name = models.CharField(max_length=50)
        email = models.CharField(max_length=100)

        class Meta:
            app_label = "shop_tests"
            db_table = "customers"
            managed = False

    with connection.cursor() as cursor:
        for statement in filter(str.strip, db.SCHEMA.split(";")):
            cursor.execute(statement)
        seed(lambda sql, row: cursor.execute(sql.replace("?", "%s"), row))
    return connection, Customer


def test_revenue_by_category(django_db):
    connection, _ = django_db
    with connection.cursor() as cursor:
        assert reports.revenue_by_category("kitchen", cursor) == [("Teapot", 3500), ("Blue mug", 2400)]
    assert reports.revenue_by_category("garden") == []


def test_big_orders(django_db):
    connection, _ = django_db
    with connection.cursor() as cursor:
        assert reports.big_orders(cursor, 3) == [(2, 5), (4, 3)]


def test_customers_named_and_by_email(django_db):
    _, customer = django_db
    assert reports.customers_named(customer, "Alice") == ["alice@example.com", "alice@corp.example"]
    assert reports.customers_with_email(customer, "bob@example.com") == ["Bob"]
