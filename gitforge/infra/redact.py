"""Secrets never reach `.forge/`, logs or notes: everything gitforge keeps from a model or an
agent passes through `redact` first."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

MASK = "[REDACTED]"
# Anthropic keys, and the usual shapes of other providers' keys an agent might print.
_PATTERNS = re.compile(
    r"sk-ant-[A-Za-z0-9_\-]{8,}"
    r"|sk-[A-Za-z0-9_\-]{20,}"
    r"|(?i:bearer)\s+[A-Za-z0-9._\-]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{20,}")
SECRET_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "OPENAI_API_KEY", "GITHUB_TOKEN", "GH_TOKEN")
# gitforge's own credentials: never handed to code a model wrote (gates, fix commands, setup)
OWN_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")


def without_own_secrets(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k not in OWN_VARS}


def redact_file(path: Path, secrets: Iterable[str] | None = None) -> None:
    """Mask secrets in a log in place, line by line (logs can be large; no secret spans a newline)."""
    secrets = list(secrets_from() if secrets is None else secrets)
    if not path.is_file():
        return
    tmp = path.with_name(path.name + ".redact")
    changed = False
    with open(path, encoding="utf-8", errors="surrogateescape", newline="") as src, \
            open(tmp, "w", encoding="utf-8", errors="surrogateescape", newline="") as dst:
        for line in src:
            masked = redact(line, secrets)
            changed = changed or masked != line
            dst.write(masked)
    if changed:
        os.replace(tmp, path)
    else:  # the usual case: nothing to mask, the log stays as written
        os.unlink(tmp)


def secrets_from(environ: Mapping[str, str] | None = None, names: Iterable[str] = SECRET_VARS) -> list[str]:
    env = os.environ if environ is None else environ
    return [env[n] for n in names if len(env.get(n, "")) >= 8]


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every known secret value and every key-shaped string masked."""
    for value in sorted(secrets_from() if secrets is None else secrets, key=len, reverse=True):
        if value:
            text = text.replace(value, MASK)
    return _PATTERNS.sub(MASK, text)


def redact_obj(obj, secrets: Iterable[str] | None = None):
    """`redact` over every string inside a JSON-shaped value."""
    secrets = list(secrets_from() if secrets is None else secrets)
    if isinstance(obj, str):
        return redact(obj, secrets)
    if isinstance(obj, list):
        return [redact_obj(v, secrets) for v in obj]
    if isinstance(obj, dict):
        return {k: redact_obj(v, secrets) for k, v in obj.items()}
    return obj
