"""The rules of ``kubernetes/extra.py`` against real Checkov: one run before,
every built-in finding planned and applied, one run after."""

from __future__ import annotations

import re
from pathlib import Path

from jupiter.plans import WriteFile
from jupiter.plugins.kubernetes.fix import K8sParams, KubernetesPodSecurity
from jupiter.targets.local import LocalTarget
from tests.tools import checkov_failed

MANIFESTS = """\
apiVersion: v1
kind: ServiceAccount
metadata:
  name: default
  namespace: shop
---
# the API pods
apiVersion: apps/v1
kind: Deployment
metadata:
  name: api
  namespace: shop
spec:
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers:
        - name: api
          image: registry.example.com/shop/api:1.4.2
          imagePullPolicy: IfNotPresent   # cached images
          env:
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: db, key: password}}
---
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: node-agent
  namespace: shop
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      hostNetwork: true
      hostPID: true
      containers:
        - name: agent
          image: registry.example.com/agent:2.0@sha256:{DIGEST}
          ports: [{containerPort: 9100, hostPort: 9100}]
          volumeMounts: [{name: sock, mountPath: /var/run/docker.sock}]
      volumes:
        - name: sock
          hostPath: {path: /var/run/docker.sock}
"""
MANIFESTS = MANIFESTS.replace("{DIGEST}", "0" * 64)
FIXED = {"CKV_K8S_15", "CKV_K8S_29", "CKV_K8S_30", "CKV_K8S_41"}
LEFT = {"CKV_K8S_17", "CKV_K8S_19", "CKV_K8S_26", "CKV_K8S_27", "CKV_K8S_35"}


def _checkov(root: Path) -> set[str]:
    return checkov_failed(root, "kubernetes")


def test_extra_rules_against_checkov(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(MANIFESTS)
    before = _checkov(tmp_path)
    assert before >= FIXED | LEFT, sorted((FIXED | LEFT) - before)
    target, plugin, params = LocalTarget(tmp_path), KubernetesPodSecurity(), K8sParams()
    manual: dict[str, str] = {}
    for finding in plugin.detect(target):
        plan = plugin.plan(finding, target, params)
        if plan.needs_manual:
            manual[finding.rule_id] = plan.needs_manual
        for change in plan.changes:
            assert isinstance(change, WriteFile)
            (tmp_path / change.path).write_text(change.content)
    assert {"K8S-HOST-NAMESPACES", "K8S-HOST-PORT", "K8S-DOCKER-SOCKET", "K8S-SECRET-ENV"} <= set(
        manual
    )
    assert "node agent" in manual["K8S-HOST-NAMESPACES"]
    text = (tmp_path / "shop.yaml").read_text()
    assert re.search(r"\n {10}imagePullPolicy: Always +# cached images\n", text)
    assert text.startswith(
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: default\n"
        "  namespace: shop\nautomountServiceAccountToken: false\n---\n# the API pods\n"
    )
    after = _checkov(tmp_path)
    assert not after & FIXED, sorted(after & FIXED)
    assert after >= LEFT
    assert not after - before, sorted(after - before)
    for finding in plugin.detect(target):
        assert plugin.plan(finding, target, params).changes == []
