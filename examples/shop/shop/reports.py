"""Django-style reports for the back office.

DELIBERATELY VULNERABLE (see db.py). The functions take the Django cursor or
model they work on, so this module imports without Django being configured;
``connection`` is the default database when the caller has none.
"""

# ruff: noqa: UP031, UP032, E501

from django.db import connection


def revenue_by_category(category, cursor=None):
    cursor = cursor or connection.cursor()
    # Revenue of one category, biggest products first.
    cursor.execute(
        "SELECT p.name, SUM(o.quantity * p.price) FROM orders o JOIN products p ON p.id = o.product_id "
        "WHERE p.category = '%s' GROUP BY p.name ORDER BY 2 DESC, 1" % category
    )
    return cursor.fetchall()


def big_orders(cursor, min_quantity):
    sql = "SELECT id, quantity FROM orders WHERE quantity >= {} ORDER BY id".format(min_quantity)
    cursor.execute(sql)
    return cursor.fetchall()


def customers_named(model, name):
    # raw() maps the rows onto model instances.
    return [c.email for c in model.objects.raw("SELECT id, name, email FROM customers WHERE name = '%s' ORDER BY id" % name)]


def customers_with_email(model, email):
    found = model.objects.extra(where=["email = '%s'" % email]).order_by("id")
    return list(found.values_list("name", flat=True))
