"""Data access for the example shop (deliberately vulnerable: Jupiter's demo target)."""

import sqlite3

DB_PATH = "shop.db"


def connect() -> sqlite3.Connection:
    return sqlite3.connect(DB_PATH)


def find_user(conn: sqlite3.Connection, username: str) -> tuple | None:
    cur = conn.cursor()
    cur.execute("SELECT id, username, email FROM users WHERE username = '%s'" % username)
    return cur.fetchone()


def search_products(conn: sqlite3.Connection, term: str, limit: int) -> list[tuple]:
    query = f"SELECT id, name, price FROM products WHERE name LIKE '%{term}%' LIMIT {limit}"
    return conn.execute(query).fetchall()


def product_by_id(conn: sqlite3.Connection, product_id: int) -> tuple | None:
    # Safe: parameterised.
    return conn.execute("SELECT id, name, price FROM products WHERE id = ?", (product_id,)).fetchone()
