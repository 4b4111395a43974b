"""Python application security: Bandit's findings beyond SQL injection.

This package is the domain's whole home: ``detect`` (an ``ast`` walk that
finds what Bandit finds, with the same rule ids and lines), ``codemods``
(libcst rewrites that keep formatting and comments), ``fix`` (the
remediator) and ``validate`` (compile + Bandit re-run on the candidate). What
each Bandit id gets — a fix, a fix that needs approval, or the decision a
person must make — is the catalog in ``catalog/python.yaml``. This module
only declares the domain as data, so importing it costs nothing.
"""

from __future__ import annotations

from jupiter.plugins.domains import Domain

#: Bandit id -> category. Each family has its own category so that two
#: findings on one line (``verify=False`` without a timeout) stay two findings.
RULE_CATEGORIES: dict[str, str] = {
    "B113": "code.http_timeout",
    "B506": "code.yaml_load",
    "B501": "code.tls_verify",
    "B502": "code.tls_verify",
    "B503": "code.tls_verify",
    "B504": "code.tls_verify",
    "B323": "code.tls_verify",
    "B201": "code.debug",
    "B602": "code.shell",
    "B604": "code.shell",
    "B605": "code.shell",
    "B324": "code.weak_hash",
    "B303": "code.weak_hash",
    "B311": "code.insecure_random",
    "B306": "code.tempfile",
    "B108": "code.tempfile",
    "B701": "code.template_escape",
    "B702": "code.template_escape",
    "B703": "code.template_escape",
    "B308": "code.template_escape",
    "B704": "code.template_escape",
    "B307": "code.eval",
    "B102": "code.eval",
    "B614": "code.deserialization",
    "B301": "code.deserialization",
    "B302": "code.deserialization",
    "B403": "code.deserialization",
    "B202": "code.archive",
    "B105": "code.hardcoded_secret",
    "B106": "code.hardcoded_secret",
    "B107": "code.hardcoded_secret",
    **{f"B{n}": "code.xml" for n in (313, 314, 315, 316, 317, 318, 319)},
    **{f"B{n}": "code.xml_import" for n in (405, 406, 407, 408, 409, 411)},
}
#: The rules only a person can fix: one category each, so that two of them on
#: one line (B603 and B607 on a subprocess call) stay two findings.
_MANUAL = {
    "B101": "code.assert",
    "B104": "code.bind_all",
    "B110": "code.silenced_exception",
    "B112": "code.silenced_exception",
    "B304": "code.weak_cipher",
    "B305": "code.weak_cipher_mode",
    "B310": "code.url_open",
    "B312": "code.telnet",
    "B401": "code.telnet",
    "B321": "code.ftp",
    "B402": "code.ftp",
    "B404": "code.subprocess_import",
    "B412": "code.httpoxy",
    "B413": "code.pycrypto",
    "B415": "code.ipmi",
    "B505": "code.weak_key",
    "B507": "code.ssh_host_key",
    "B508": "code.snmp",
    "B509": "code.snmp_crypto",
    "B601": "code.remote_exec",
    "B603": "code.subprocess_argv",
    "B606": "code.process_no_shell",
    "B607": "code.partial_path",
    "B609": "code.wildcard",
    "B612": "code.logging_listen",
    "B613": "code.trojan_source",
    "B615": "code.unpinned_model",
}
RULE_CATEGORIES.update(_MANUAL)
#: Jupiter's own rules, for what Bandit does not check.
RULE_CATEGORIES.update(
    {
        "PY-DJANGO-DEBUG": "code.debug",
        "PY-COOKIE-FLAGS": "code.cookie",
        "PY-JWT-NO-VERIFY": "code.jwt",
        "PY-CSRF-EXEMPT": "code.csrf",
    }
)


DOMAIN = Domain(
    name="python-security",
    summary="Python application code: Bandit's findings other than SQL injection",
    categories=tuple(sorted({*RULE_CATEGORIES.values()})),
    order=35,
    rule_categories=RULE_CATEGORIES,
    catalog="jupiter.plugins.python_security",
)
