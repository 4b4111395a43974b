"""Vulnerable Python dependencies: requirements, pyproject, Poetry and uv locks.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

from jupiter.models import Category
from jupiter.plugins.domains import Domain

#: Dependency findings come from advisory formats (OSV, pip-audit, Trivy
#: packages) whose parsers set the category themselves: no rule to match.
DOMAIN = Domain(
    name="dependencies",
    summary="Vulnerable dependencies (Python: requirements, pyproject, poetry.lock, uv.lock)",
    categories=(Category.DEPENDENCY,),
    order=80,
)
