"""A small shop: sqlite3 data access, Django-style reports and a WSGI front end."""
