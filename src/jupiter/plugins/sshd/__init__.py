"""SSH daemon hardening: sshd_config with its Includes and Match blocks.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

import re

from jupiter.models import Category
from jupiter.plugins.domains import Domain

DOMAIN = Domain(
    name="sshd",
    summary="OpenSSH server configuration (sshd_config, Include, Match)",
    categories=(Category.CONFIG_SSH,),
    order=50,
    text=re.compile(r"\bsshd?\b|sshd_config", re.IGNORECASE),
)
