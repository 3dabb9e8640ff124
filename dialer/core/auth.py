"""Roles, principals and API keys. A key is shown once; only its sha256 is stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from enum import StrEnum

KEY_PREFIX = "dk"


class Role(StrEnum):
    ADMIN = "admin"  # guardrail profile per portfolio, keys; may do everything
    SUPERVISOR = "supervisor"  # strategies, campaigns, imports, assignment
    APPROVER = "approver"  # approves escalations that need approval
    AGENT = "agent"  # cases, dispositions
    SERVICE = "service"  # internal callers (planner, workers, importers)


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return f"{self.role}:{self.name}"


@dataclass(frozen=True, slots=True)
class NewKey:
    prefix: str
    secret: str
    hash: str

    @property
    def plaintext(self) -> str:
        return f"{KEY_PREFIX}_{self.prefix}_{self.secret}"


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> NewKey:
    prefix = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)  # 32 random bytes
    return NewKey(prefix, secret, hash_key(f"{KEY_PREFIX}_{prefix}_{secret}"))


def key_prefix(plaintext: str) -> str | None:
    """The lookup prefix of a presented key, or None when it is not shaped like one."""
    parts = plaintext.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1] or not parts[2]:
        return None
    return parts[1]


def key_matches(plaintext: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_key(plaintext), stored_hash)
