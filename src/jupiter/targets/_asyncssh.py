"""asyncssh, imported once without cryptography's DSA deprecation warning.

cryptography 47+ warns when any code touches its DSA classes, and asyncssh
builds a type alias from them at import time. Jupiter never offers DSA (the
SSH hardening plugins remove it), so the warning says nothing to a user and
only clutters every command that reaches an SSH target. Every module under
`jupiter.targets` imports asyncssh from here so the filter is applied once,
around the import that triggers it, and nowhere else.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="DSA is deprecated", category=Warning)
    import asyncssh

__all__ = ["asyncssh"]
