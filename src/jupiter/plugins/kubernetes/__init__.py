"""Kubernetes workload security: pod and container securityContext, resources.

This package is the domain's whole home: ``parse``, ``detect``, ``fix`` and
``validate`` side by side. This module only declares the domain as data, so
importing it costs nothing (see :mod:`jupiter.plugins.domains`).
"""

from __future__ import annotations

import re

from jupiter.models import Category
from jupiter.plugins.domains import Domain

DOMAIN = Domain(
    name="kubernetes",
    summary="Kubernetes manifests (pod security, resources, service accounts)",
    categories=(Category.IAC_KUBERNETES,),
    order=10,
    rule_prefixes=("CKV_K8S_", "CKV2_K8S_"),
    catalog="jupiter.plugins.kubernetes",
    rule_tail=re.compile(r"(AVD-)?KSV-?\d"),
)
