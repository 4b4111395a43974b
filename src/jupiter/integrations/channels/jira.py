"""Jira (REST API v2 or v3): a ticket per remediation (or fix run).

* an event in ``CREATE_ON`` (awaiting approval, a failed fix) creates the
  change ticket when there is none yet;
* every event comments on the ticket (the delivery key in the comment, so a
  redelivery does not comment twice);
* ``RESOLVE_ON`` (completed, a fix that succeeded) transitions it to
  ``resolve_transition`` (default "Resolved"), ``REOPEN_ON`` (rolled back) to
  ``reopen_transition`` (default "Reopen"), each looked up by name with
  ``GET /rest/api/N/issue/{key}/transitions``.

The ticket of a subject is found again by its label ``jupiter-<hash>``
(JQL search), or by the ``jira_key`` a finding was ingested with.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from urllib.parse import quote, urlencode

from jupiter.integrations.channels.base import Channel, Delivery, PermanentError, summary_line

CREATE_ON = frozenset(
    {"remediation.awaiting_approval", "fix.failed", "rollback.failed", "rollback.mismatch"}
)
RESOLVE_ON = frozenset({"remediation.completed", "fix.succeeded"})
REOPEN_ON = frozenset({"remediation.rolled_back", "fix.rolled_back", "rollback.verified"})


def label_for(subject: str) -> str:
    root = subject.split("/", 1)[0]
    return "jupiter-" + hashlib.sha256(root.encode()).hexdigest()[:16]


class JiraChannel(Channel):
    @property
    def _api(self) -> str:
        version = self.spec.settings.get("api_version", "2")
        return self.spec.settings["url"].rstrip("/") + f"/rest/api/{version}"

    def _headers(self) -> dict[str, str]:
        s = self.spec.settings
        basic = base64.b64encode(f"{s['user']}:{s['token']}".encode()).decode()
        return {"Authorization": f"Basic {basic}", "Accept": "application/json"}

    def _text(self, text: str) -> Any:
        if self.spec.settings.get("api_version", "2") == "3":
            return {
                "type": "doc",
                "version": 1,
                "content": [
                    {"type": "paragraph", "content": [{"type": "text", "text": line or " "}]}
                    for line in text.splitlines()
                ],
            }
        return text

    def _get(self, path: str) -> Any:
        import json

        _, raw = self.http("GET", self._api + path, None, self._headers())
        return json.loads(raw or b"null")

    def _post(self, path: str, data: Any) -> Any:
        return self.post_json(self._api + path, data, self._headers())[1]

    def find(self, item: Delivery) -> str | None:
        ctx = item.payload.get("context") or {}
        if isinstance(ctx.get("jira_key"), str):
            return str(ctx["jira_key"])
        jql = f'labels = "{label_for(item.subject)}" ORDER BY created ASC'
        found = self._get("/search?" + urlencode({"jql": jql, "fields": "key", "maxResults": 1}))
        issues = (found or {}).get("issues") or []
        return str(issues[0]["key"]) if issues else None

    def create(self, item: Delivery) -> str:
        s = self.spec.settings
        ctx = item.payload.get("context") or {}
        body = [summary_line(item), f"Subject: {item.subject}"]
        body.append(f"Actor: {item.payload.get('actor')}")
        for st in ctx.get("steps") or []:
            body.append(f"{st.get('rule_id')} (finding {st.get('finding')}): {st.get('status')}")
        created = self._post(
            "/issue",
            {
                "fields": {
                    "project": {"key": s["project"]},
                    "summary": f"Jupiter remediation {item.subject.split('/', 1)[0]}"
                    + (f" on {ctx['asset_name']}" if ctx.get("asset_name") else ""),
                    "description": self._text("\n".join(body)),
                    "issuetype": {"name": s.get("issue_type", "Task")},
                    "labels": ["jupiter", label_for(item.subject)],
                }
            },
        )
        return str(created["key"])

    def comment(self, key: str, item: Delivery) -> None:
        existing = self._get(f"/issue/{quote(key)}/comment") or {}
        for c in existing.get("comments") or []:
            if item.key in str(c.get("body")):
                return  # a redelivery: this event is on the ticket already
        text = f"{summary_line(item)}\nJupiter delivery {item.key}"
        self._post(f"/issue/{quote(key)}/comment", {"body": self._text(text)})

    def transition(self, key: str, name: str) -> None:
        issue = self._get(f"/issue/{quote(key)}?fields=status") or {}
        status = ((issue.get("fields") or {}).get("status") or {}).get("name", "")
        reached = {name.lower(), {"reopen": "reopened"}.get(name.lower(), name.lower())}
        if str(status).lower() in reached:
            return  # a redelivery: the ticket is there already
        found = self._get(f"/issue/{quote(key)}/transitions") or {}
        options = found.get("transitions") or []
        for t in options:
            if str(t.get("name", "")).lower() == name.lower():
                self._post(f"/issue/{quote(key)}/transitions", {"transition": {"id": t["id"]}})
                return
            if str((t.get("to") or {}).get("name", "")).lower() == name.lower():
                self._post(f"/issue/{quote(key)}/transitions", {"transition": {"id": t["id"]}})
                return
        names = ", ".join(str(t.get("name")) for t in options) or "none"
        raise PermanentError(
            f"Jira issue {key} has no transition named {name!r}; available: {names} "
            f"(set the channel's resolve_transition or reopen_transition)"
        )

    def deliver(self, item: Delivery) -> None:
        key = self.find(item)
        if key is None:
            if item.event not in CREATE_ON | RESOLVE_ON:
                return  # nothing to comment on: no ticket for this subject
            key = self.create(item)
        self.comment(key, item)
        if item.event in RESOLVE_ON:
            self.transition(key, self.spec.settings.get("resolve_transition", "Resolved"))
        elif item.event in REOPEN_ON:
            self.transition(key, self.spec.settings.get("reopen_transition", "Reopen"))
