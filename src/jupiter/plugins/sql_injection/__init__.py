"""SQL injection in Python code, rewritten to the driver's own placeholders.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

import re

from jupiter.models import Category
from jupiter.plugins.domains import Domain

DOMAIN = Domain(
    name="sql-injection",
    summary="SQL injection in Python code",
    categories=(Category.CODE_SQL_INJECTION,),
    order=30,
    rule_ids=frozenset({"B608"}),
    cwes=frozenset({"CWE-89"}),
    text=re.compile(r"sql[\s_-]*injection|\bsqli\b", re.IGNORECASE),
)
