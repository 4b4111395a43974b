"""Dockerfile hardening: non-root user, COPY over ADD, healthchecks.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

import re

from jupiter.models import Category
from jupiter.plugins.domains import Domain

DOMAIN = Domain(
    name="dockerfile",
    summary="Dockerfiles (non-root user, COPY instead of ADD)",
    categories=(Category.IAC_DOCKER,),
    order=20,
    rule_prefixes=("CKV_DOCKER_", "CKV2_DOCKER_"),
    catalog="jupiter.plugins.dockerfile",
    rule_tail=re.compile(r"(AVD-)?DS-?\d"),
)
