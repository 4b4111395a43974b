"""The Jinja2 environment for configuration files and scripts.

Autoescaping is off on purpose: these are configuration files and scripts,
not HTML, and escaping would corrupt them. Every value that reaches a
template has been validated by a parameter model first.
"""

from __future__ import annotations

from functools import cache

import jinja2


def environment(**syntax: str) -> jinja2.Environment:
    """A fresh environment over ``jupiter/templates`` (``syntax`` overrides
    the delimiters, e.g. for Ansible playbooks that use ``{{ }}`` themselves)."""
    return jinja2.Environment(
        loader=jinja2.PackageLoader("jupiter", "templates"),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701 - see the module docstring
        **syntax,  # type: ignore[arg-type]
    )


@cache
def config_environment() -> jinja2.Environment:
    """The shared environment with default delimiters."""
    return environment()


def render(template: str, **values: object) -> str:
    return config_environment().get_template(template).render(**values)
