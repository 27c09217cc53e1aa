"""Email and phone: one normal form for storing and looking up, and masking."""

from __future__ import annotations

import re

_PHONE_NOISE = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^\+?\d{5,15}$")


def normalize_email(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip().lower()
    return value or None


def normalize_phone(value: str | None) -> str | None:
    """Digits with an optional leading '+': '+86 138-0013-8000' -> '+8613800138000'."""
    if value is None:
        return None
    value = _PHONE_NOISE.sub("", str(value).strip())
    if value.startswith("00"):
        value = "+" + value[2:]
    return value or None


def looks_like_phone(value: str) -> bool:
    normalized = normalize_phone(value)
    return bool(normalized and _PHONE.match(normalized))


def mask_email(value: str | None) -> str:
    """'wang.wei@example.com' -> 'w*******@e******.com'."""
    if not value:
        return ""
    local, _, domain = value.partition("@")
    host, dot, tld = domain.rpartition(".")
    if not dot:
        host, tld = domain, ""
    masked_local = local[:1] + "*" * max(len(local) - 1, 2)
    masked_host = host[:1] + "*" * max(len(host) - 1, 2)
    return f"{masked_local}@{masked_host}{dot}{tld}"


def mask_phone(value: str | None) -> str:
    """Keep the last four digits: '+8613800138000' -> '+*********8000'."""
    if not value:
        return ""
    prefix = "+" if value.startswith("+") else ""
    digits = value[len(prefix):]
    return prefix + "*" * max(len(digits) - 4, 0) + digits[-4:]
