"""Host firewall: a default-drop nftables ruleset that keeps declared services reachable.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

import re

from jupiter.models import Category
from jupiter.plugins.domains import Domain

DOMAIN = Domain(
    name="nftables",
    summary="Host firewall rulesets (nftables)",
    categories=(Category.CONFIG_FIREWALL,),
    order=70,
    text=re.compile(r"firewall|nftables|iptables", re.IGNORECASE),
)
