"""The CloudFormation catalog entries as checks and edits.

An entry (``catalog/cloudformation.yaml``) names a resource type, a property
path and the secure value. This module answers, per resource: does the entry
apply, is the value already secure, and is there a reason a person must
decide even though the entry is ``safe`` or ``risk`` (a bucket that serves a
public website must not get a public-access block by itself). Those few
facts that YAML cannot say are the tables and guards below, keyed by entry id.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

from jupiter.catalog import FixEntry, load_catalog
from jupiter.plugins.cloudformation.splice import parse_path, read
from jupiter.plugins.cloudformation.template import Intrinsic, Resource, Template, get, value

ANY = object()
#: Values other than the entry's own that the check accepts (``ANY``: any value).
ACCEPTED: dict[str, tuple[object, ...]] = {
    # S3 encrypts every new object with SSE-S3 since January 2023 (and Checkov
    # passes a bucket without BucketEncryption): only a wrong value is a finding.
    "cfn-s3-default-encryption": ("aws:kms", "aws:kms:dsse", None),
    "cfn-log-group-retention": (ANY,),
    "cfn-sqs-encryption": (ANY,),
    "cfn-sns-encryption": (ANY,),
    "cfn-ecs-container-insights": ("enhanced",),
    "cfn-codebuild-artifact-encryption": (None,),
    "cfn-docdb-tls": (None,),
    "cfn-qldb-deletion-protection": (None,),  # on unless turned off
    "cfn-elbv2-listener-tls12": (
        "ELBSecurityPolicy-FS-1-2*",
        "ELBSecurityPolicy-TLS-1-2*",
        "ELBSecurityPolicy-TLS13-1-2*",
        "ELBSecurityPolicy-TLS13-1-3*",
    ),
    "cfn-cloudfront-tls12": ("TLSv1.2_*", "TLSv1.3_*"),
    "cfn-docdb-audit-logs": ("all", "ddl", "dml_read", "dml_write"),
}
#: Entries whose numeric value is a minimum.
MINIMUM = frozenset({"cfn-docdb-backup-retention"})


def _prop(r: Resource, key: str) -> Any:
    return value(get(r.properties(), key))


def _applies(entry_id: str, r: Resource) -> bool:
    if entry_id == "cfn-elbv2-listener-tls12":
        return _prop(r, "Protocol") in ("HTTPS", "TLS")
    if entry_id == "cfn-alb-drop-invalid-headers":
        return _prop(r, "Type") in (None, "application")
    if entry_id == "cfn-codebuild-artifact-encryption":
        artifacts = _prop(r, "Artifacts")
        return isinstance(artifacts, dict) and artifacts.get("Type") == "S3"
    if entry_id == "cfn-rds-iam-auth":  # IAM auth exists for these engines only
        return str(_prop(r, "Engine") or "").lower() in ("mysql", "postgres", "mariadb")
    if entry_id == "cfn-mq-audit-logs":
        return str(_prop(r, "EngineType") or "").upper() != "RABBITMQ"
    return True


def _bucket_policies(t: Template, logical_id: str) -> bool:
    for other in t.resources:
        if other.type != "AWS::S3::BucketPolicy":
            continue
        bucket = _prop(other, "Bucket")
        if isinstance(bucket, Intrinsic) and logical_id in str(bucket.arg):
            return True
    return False


def _public_bucket(t: Template, r: Resource) -> str | None:
    if _prop(r, "WebsiteConfiguration") is not None:
        return "it is configured as a static website"
    acl = _prop(r, "AccessControl")
    if isinstance(acl, str) and acl.startswith("Public"):
        return f"its AccessControl is {acl}"
    if _bucket_policies(t, r.logical_id):
        return "a bucket policy in this template may grant public access"
    return None


Guard = Callable[[Template, Resource], "str | None"]


def _s3_guard(t: Template, r: Resource) -> str | None:
    why = _public_bucket(t, r)
    if why is None:
        return None
    return (
        f"bucket {r.logical_id} may be public on purpose ({why}): decide whether it must "
        "stay public (serve it through CloudFront with origin access control instead), "
        "then block public access"
    )


def _kms_guard(t: Template, r: Resource) -> str | None:
    spec = _prop(r, "KeySpec")
    if spec in (None, "SYMMETRIC_DEFAULT"):
        return None
    return f"key {r.logical_id} is {spec}: KMS rotates only symmetric encryption keys"


def _cloudfront_tls_guard(t: Template, r: Resource) -> str | None:
    config = _prop(r, "DistributionConfig")
    cert = config.get("ViewerCertificate") if isinstance(config, dict) else None
    if isinstance(cert, dict) and (cert.get("AcmCertificateArn") or cert.get("IamCertificateId")):
        return None
    return (
        f"distribution {r.logical_id} uses CloudFront's default certificate, whose TLS "
        "minimum cannot be raised: attach an ACM certificate for your domain first"
    )


GUARDS: dict[str, Guard] = {
    "cfn-s3-block-public-acls": _s3_guard,
    "cfn-s3-block-public-policy": _s3_guard,
    "cfn-s3-ignore-public-acls": _s3_guard,
    "cfn-s3-restrict-public-buckets": _s3_guard,
    "cfn-kms-key-rotation": _kms_guard,
    "cfn-cloudfront-tls12": _cloudfront_tls_guard,
}


@cache
def entries() -> tuple[FixEntry, ...]:
    return tuple(load_catalog().select(framework="cloudformation"))


def for_rule(rule_id: str, resource_type: str | None = None) -> list[FixEntry]:
    return [
        e
        for e in entries()
        if rule_id.upper() in (r.upper() for r in e.rule_ids())
        and (resource_type is None or resource_type in e.resources)
    ]


def checkable(entry: FixEntry) -> bool:
    """Whether the built-in detector can judge the entry (a path and a value)."""
    return entry.path is not None and entry.value is not None


def _ok(entry: FixEntry, current: Any) -> bool:
    want = entry.value
    if isinstance(current, Intrinsic):
        return True  # computed: the detector cannot judge it (a fix says why)
    accepted = ACCEPTED.get(entry.id, ())
    if ANY in accepted and current is not None:
        return True
    if current in accepted:
        return True
    if isinstance(current, str) and any(
        isinstance(a, str) and a.endswith("*") and current.startswith(a[:-1]) for a in accepted
    ):
        return True
    if isinstance(want, bool):
        return current is want or (
            isinstance(current, str) and current.lower() == str(want).lower()
        )
    if isinstance(want, int) and entry.id in MINIMUM:
        return isinstance(current, int) and current >= want
    if isinstance(want, dict):
        if not isinstance(current, dict):
            return False
        first, *rest = want
        return current.get(first) == want[first] and all(current.get(k) is not None for k in rest)
    return bool(current == want)


def failing(entry: FixEntry, template: Template, resource: Resource) -> Any:
    """The insecure value the entry sees on ``resource`` (``None`` when
    passing); the string ``"unset"`` for a missing property."""
    if not checkable(entry) or resource.type not in entry.resources:
        return None
    if not _applies(entry.id, resource):
        return None
    assert entry.path is not None
    props = resource.properties()
    currents = read(props, parse_path(entry.path)) if props is not None else [None]
    for current in currents:
        if not _ok(entry, current):
            if entry.fix_class == "needs_manual" and current is None:
                continue  # only an explicit insecure value is reported without a scanner
            return "unset" if current is None else current
    return None


def guard(entry: FixEntry, template: Template, resource: Resource) -> str | None:
    check = GUARDS.get(entry.id)
    return check(template, resource) if check else None


def computed(entry: FixEntry, resource: Resource) -> str | None:
    """The intrinsic function that computes the entry's property, if one does."""
    if entry.path is None:
        return None
    props = resource.properties()
    for current in read(props, parse_path(entry.path)) if props is not None else []:
        if isinstance(current, Intrinsic):
            return current.name
    return None
