"""Optional: map free text the keyword grammar did not understand to one
intent and its parameters through an OpenAI-compatible chat endpoint
(``JUPITER_LLM_URL``, e.g. ``http://127.0.0.1:8080/v1``; ``JUPITER_LLM_MODEL``;
``JUPITER_LLM_API_KEY`` sent as a bearer token). The model only *names* an
intent: its answer is checked against the intents and parameter names the
copilot knows, and the copilot then acts exactly as for a parsed query (same
engine calls, same role checks). Nothing the model says is executed."""

from __future__ import annotations

import os
from typing import Any

import httpx
import orjson

from jupiter.copilot.intents import CAPABILITIES, Parsed
from jupiter.errors import InputError
from jupiter.redact import redact_text

#: Parameters the model may fill (all strings), and what they mean.
PARAMS: dict[str, str] = {
    "asset_ref": "an asset id, name or description",
    "remediation": "a remediation id such as REM-3",
    "snapshot_id": "a rollback point id such as SNAP-2026-01-31-001",
    "strategy": "rolling, canary or blue-green",
    "vulnerability_type": "e.g. sql_injection",
    "component": "a file path such as auth/login.py",
    "config_type": "ssh, firewall or database",
    "severity": "critical, high, medium or low",
    "status": "open, fixed, verified or excepted",
}
TIMEOUT_S = 20.0


def configured() -> bool:
    return bool(os.environ.get("JUPITER_LLM_URL"))


def _prompt() -> str:
    intents = "\n".join(f"- {k}: {v}" for k, v in CAPABILITIES.items())
    params = "\n".join(f"- {k}: {v}" for k, v in PARAMS.items())
    return (
        "You map a security engineer's request to one intent of the Jupiter copilot. "
        "Answer with one JSON object and nothing else: "
        '{"intent": NAME, "params": {NAME: STRING}}. Use intent "unknown" when none fits.\n'
        f"Intents:\n{intents}\nParameters (only these, only when the request says them):\n"
        f"{params}"
    )


def interpret(message: str, client: httpx.Client | None = None) -> Parsed:
    """The model's reading of ``message``, validated; InputError (one
    sentence) when the endpoint fails or answers something else."""
    url = os.environ["JUPITER_LLM_URL"].rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json"}
    key = os.environ.get("JUPITER_LLM_API_KEY")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    body = {
        "model": os.environ.get("JUPITER_LLM_MODEL", "default"),
        "temperature": 0,
        "response_format": {"type": "json_object"},
        "messages": [
            {"role": "system", "content": _prompt()},
            {"role": "user", "content": message},
        ],
    }
    own = client is None
    http = client or httpx.Client(timeout=TIMEOUT_S)
    try:
        reply = http.post(url, content=orjson.dumps(body), headers=headers)
        reply.raise_for_status()
        content = reply.json()["choices"][0]["message"]["content"]
        answer = orjson.loads(content)
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        raise InputError(
            redact_text(f"the language model at {url} gave no usable answer ({exc})")
        ) from None
    finally:
        if own:
            http.close()
    return _validated(answer)


def _validated(answer: Any) -> Parsed:
    if not isinstance(answer, dict):
        raise InputError("the language model answered something that is not a JSON object")
    intent = answer.get("intent")
    if intent == "unknown":
        return Parsed("unknown", understood=["nothing (the language model did not know either)"])
    if intent not in CAPABILITIES:
        raise InputError(f"the language model named an intent the copilot lacks: {intent!r}")
    raw = answer.get("params") or {}
    if not isinstance(raw, dict):
        raise InputError("the language model's params are not a JSON object")
    params = {k: str(v) for k, v in raw.items() if k in PARAMS and isinstance(v, str | int)}
    understood = [f"{k} {v}" for k, v in params.items()]
    return Parsed(str(intent), params, ["(via the language model)", *understood])
