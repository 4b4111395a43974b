"""Jupiter's built-in remediation domains, one package each.

Every domain lives in ``jupiter/plugins/<domain>/`` with its parser,
detector, fixer and validator side by side, and registers through the same
entry points a third-party plugin uses (``jupiter.domains`` for what it is,
``jupiter.remediators`` for what fixes it). The shared plugin kit is
:mod:`jupiter.plugins.kit`; the contract is :mod:`jupiter.plugins.base`.
"""
