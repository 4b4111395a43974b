"""File permissions: world-writable files, readable secrets, wrong owners.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

from jupiter.models import Category
from jupiter.plugins.domains import Domain

DOMAIN = Domain(
    name="permissions",
    summary="File and directory permissions",
    categories=(Category.PERMISSIONS,),
    order=40,
    rule_ids=frozenset({"B103"}),
    cwes=frozenset({"CWE-276", "CWE-732", "CWE-281"}),
)
