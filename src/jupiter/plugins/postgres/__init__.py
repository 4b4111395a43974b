"""PostgreSQL server hardening: postgresql.conf (with includes) and pg_hba.conf.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

import re

from jupiter.models import Category
from jupiter.plugins.domains import Domain

DOMAIN = Domain(
    name="postgres",
    summary="PostgreSQL server configuration (postgresql.conf, pg_hba.conf)",
    categories=(Category.CONFIG_DATABASE,),
    order=60,
    text=re.compile(r"postgres|pg_hba|mysql|mariadb", re.IGNORECASE),
)
