"""The shop's HTTP front end: a plain WSGI application (standard library only).

Routes: ``/products?category=C``, ``/search?q=TERM``, ``/product?id=N``,
``/sorted?by=COLUMN``. Each answers JSON.
"""

import json
import os
from urllib.parse import parse_qs
from wsgiref.simple_server import make_server

from shop import db


def make_app(conn):
    """A WSGI application that serves the shop from ``conn``."""

    def app(environ, start_response):
        query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        path = environ.get("PATH_INFO", "/")
        if path == "/products":
            body = [list(r) for r in db.products_in_category(conn, query.get("category", ""))]
        elif path == "/search":
            body = db.search_products(conn, query.get("q", ""))
        elif path == "/product" and query.get("id", "").isdigit():
            row = db.product_by_id(conn, int(query["id"]))
            body = list(row) if row else None
        elif path == "/sorted" and query.get("by") in ("name", "price", "stock"):
            # The allow-list above is what makes the ORDER BY column safe here.
            body = [r[0] for r in db.products_sorted(conn, query["by"])]
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b'{"error": "not found"}']
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


if __name__ == "__main__":
    host, port = os.environ.get("SHOP_HOST", "127.0.0.1"), int(os.environ.get("SHOP_PORT", "8000"))
    make_server(host, port, make_app(db.connect(os.environ.get("SHOP_DB", "shop.db")))).serve_forever()
