"""Everything else (Teams, Discord, email, Telegram, ...) through apprise
URLs (``JUPITER_APPRISE_URLS``, space or comma separated)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from jupiter.integrations.channels.base import Channel, ChannelError, Delivery, summary_line
from jupiter.integrations.config import ChannelSpec, DispatchSettings


@contextmanager
def _quiet() -> Iterator[None]:
    """apprise's own DeprecationWarnings (it imports imghdr lazily) are not
    Jupiter's to show, nor an error under ``-W error``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _apprise() -> Any:
    with _quiet():
        import apprise

    return apprise


_TYPES = {"info": "success", "warning": "warning", "high": "failure", "critical": "failure"}


class AppriseChannel(Channel):
    def __init__(self, spec: ChannelSpec, settings: DispatchSettings) -> None:
        super().__init__(spec, settings)
        apprise = _apprise()

        self._apprise = apprise.Apprise()
        urls = [u for u in re.split(r"[\s,]+", spec.settings["urls"]) if u]
        with _quiet():
            bad = [i for i, u in enumerate(urls, start=1) if not self._apprise.add(u)]
        if bad:
            raise ChannelError(
                f"apprise cannot use URL #{', #'.join(map(str, bad))} of channel {spec.name!r}; "
                "check its scheme against apprise's list of services"
            )

    def deliver(self, item: Delivery) -> None:
        apprise = _apprise()

        ctx = item.payload.get("context") or {}
        lines = [summary_line(item), f"actor: {item.payload.get('actor')}"]
        lines += [f"{s.get('rule_id')}: {s.get('status')}" for s in ctx.get("steps") or []]
        kind = getattr(apprise.NotifyType, _TYPES.get(item.severity, "info").upper())
        with _quiet():
            ok = self._apprise.notify(
                title=f"Jupiter: {item.event}", body="\n".join(lines), notify_type=kind
            )
        if not ok:
            raise ChannelError(f"apprise could not deliver to every URL of {self.name!r}")
