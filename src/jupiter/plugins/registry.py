"""Discovery of remediators through the ``jupiter.remediators`` entry points.

Built-ins register through the same entry-point group as third-party
plugins (see ``pyproject.toml``). Loading is lazy (first use) and
fault-isolated: a plugin that fails to import or is malformed is reported by
name in :attr:`Registry.errors` and the others keep working.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from jupiter.errors import NotFoundError
from jupiter.models import FindingRecord
from jupiter.plugins.base import AnyRemediator, Remediator

GROUP = "jupiter.remediators"
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass
class Registry:
    plugins: dict[str, AnyRemediator] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def add(self, plugin: AnyRemediator, source: str = "builtin") -> None:
        name = getattr(plugin, "name", "")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ValueError(f"remediator name {name!r} is not kebab-case")
        if name in self.plugins:
            raise ValueError(f"remediator {name!r} is registered twice ({source})")
        self.plugins[name] = plugin
        self.sources[name] = source

    def get(self, name: str) -> AnyRemediator:
        try:
            return self.plugins[name]
        except KeyError:
            known = ", ".join(sorted(self.plugins)) or "none"
            raise NotFoundError(
                f"no remediator named {name!r}; known remediators: {known}"
            ) from None

    def for_finding(self, finding: FindingRecord) -> AnyRemediator | None:
        """The plugin that fixes ``finding``: a team's registered custom
        script first (registering one for a rule is a deliberate override),
        then the others in name order."""
        names = sorted(self.plugins, key=lambda n: (self.sources[n] != "custom", n))
        for name in names:
            plugin = self.plugins[name]
            if plugin.handles(finding):
                return plugin
        return None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.plugins[n] for n in sorted(self.plugins))


def load_registry() -> Registry:
    """Load every remediator registered in the entry-point group."""
    registry = Registry()
    for ep in sorted(entry_points(group=GROUP), key=lambda e: e.name):
        try:
            obj = ep.load()
            plugin = obj() if isinstance(obj, type) else obj
            if not isinstance(plugin, Remediator):
                raise TypeError(f"{ep.value} is not a jupiter Remediator")
            if plugin.name != ep.name:
                raise ValueError(
                    f"entry point {ep.name!r} loads a remediator named {plugin.name!r}"
                )
            dist = ep.dist.name if ep.dist is not None else "unknown"
            registry.add(plugin, source=dist)
        except Exception as exc:  # noqa: BLE001 - isolate one broken plugin
            registry.errors[ep.name] = f"{type(exc).__name__}: {exc}"
    return registry
