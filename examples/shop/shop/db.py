"""sqlite3 data access for the shop.

DELIBERATELY VULNERABLE: every query below is built from strings, the way
real code bases drift into SQL injection. Jupiter's sql-injection-python
remediator rewrites them into parameterised queries; tests/test_shop.py
must pass before and after that rewrite.
"""

# The old-style formatting is the point of this module.
# ruff: noqa: UP031, UP032, E501

import sqlite3

SCHEMA = """
CREATE TABLE products (id INTEGER PRIMARY KEY, name TEXT, category TEXT, price INTEGER, stock INTEGER);
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT, email TEXT);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, product_id INTEGER, quantity INTEGER);
"""


def connect(path: str = ":memory:") -> sqlite3.Connection:
    """A connection with the shop's schema (created when missing)."""
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA)
    return conn


def product_by_name(conn, name):
    cur = conn.cursor()
    # Exact match on the display name (the quotes are part of the bug).
    cur.execute("SELECT id, name, price FROM products WHERE name = '%s'" % name)
    return cur.fetchone()


def products_in_category(conn, category):
    # Newest first, as the catalogue page shows them.
    return conn.execute(f"SELECT id, name FROM products WHERE category = '{category}' ORDER BY id DESC").fetchall()


def cheaper_in_category(conn, category, max_price):
    cur = conn.cursor()
    cur.execute(
        "SELECT name, price FROM products WHERE category = '{}' AND price <= {limit} ORDER BY price".format(
            category, limit=max_price
        )
    )
    return cur.fetchall()


def search_products(conn, term):
    cur = conn.cursor()
    # Substring search; '%%' is a literal percent sign in the pattern.
    cur.execute("SELECT name FROM products WHERE name LIKE '%%%s%%' ORDER BY id" % term)
    return [row[0] for row in cur.fetchall()]


def product_by_id(conn, product_id):
    cur = conn.cursor()
    cur.execute("SELECT id, name, stock FROM products WHERE id = " + str(product_id))
    return cur.fetchone()


def customer_by_email(conn, email):
    cur = conn.cursor()
    cur.execute("SELECT id, name FROM customers WHERE email = '" + email + "'")  # login lookup
    return cur.fetchone()


def in_stock_page(conn, min_stock, limit):
    return conn.execute(
        f"SELECT name, stock FROM products WHERE stock >= {min_stock} ORDER BY id LIMIT {limit}"
    ).fetchall()


def orders_of(conn, email):
    query = (
        "SELECT o.id, p.name, o.quantity FROM orders o "
        "JOIN products p ON p.id = o.product_id "
        "JOIN customers c ON c.id = o.customer_id "
        "WHERE c.email = '%s' ORDER BY o.id" % email
    )
    # Kept in a variable so it can be logged (never log it with the values!).
    cur = conn.cursor()
    cur.execute(query)
    return cur.fetchall()


def place_order(conn, customer_id, product_id, quantity):
    cur = conn.cursor()
    cur.execute(
        "INSERT INTO orders (customer_id, product_id, quantity) VALUES (%d, %d, %d)"
        % (customer_id, product_id, quantity)
    )
    conn.commit()
    return cur.lastrowid


def rename_customer(conn, customer_id, name):
    conn.execute(
        "UPDATE customers SET name = '%(name)s' WHERE id = %(id)d" % {"name": name, "id": customer_id}
    )
    conn.commit()


def products_sorted(conn, column):
    # Identifiers cannot be query parameters: this one needs an allow-list,
    # which only a human can write (Jupiter reports it as needs_manual).
    return conn.execute(f"SELECT name FROM products ORDER BY {column}, id").fetchall()


def product_count(conn):
    # Already safe: a constant query.
    return conn.execute("SELECT COUNT(*) FROM products").fetchone()[0]
