"""The pseudonymization key and the keyed hash that replaces every ID number and name at the door.

The ID-number space is small (region x birth date x 1000), so an unkeyed hash could be reversed by
enumeration; HMAC-SHA256 under a secret key cannot be, as long as the key stays out of the lake.
Every hash is domain-separated by a kind tag, so an ID prefix never hashes like a full ID or a name.
The Spark side (`jobs.pseudonymize`) computes the same function; tests hold the two equal.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import sys
import unicodedata

from core.settings import Settings

log = logging.getLogger(__name__)

KINDS = ("id", "prefix", "name")
_SEP = "\x1f"


class PseudonymKeyError(RuntimeError):
    """The key cannot be read or created, or does not match the lake."""


def load_key(settings: Settings) -> bytes:
    """The key from ENUMWATCH_PSEUDONYM_KEY, else from the key file, creating it (mode 0600) once."""
    if settings.pseudonym_key:
        return settings.pseudonym_key.encode("utf-8")
    path = settings.key_file
    if path.exists():
        key = path.read_text(encoding="ascii").strip()
        if len(key) < 32:
            raise PseudonymKeyError(f"pseudonym key file {path} is shorter than 32 characters")
        log.info("using pseudonym key file %s", path)
        return key.encode("ascii")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    print(
        f"enumwatch: created pseudonym key file {path} (mode 0600); back it up, keep it out of the lake",
        file=sys.stderr,
    )
    return path.read_text(encoding="ascii").strip().encode("ascii")


def fingerprint(key: bytes) -> str:
    """A short, non-reversible tag of the key, stored in the lake to catch a run with another key."""
    return hmac.new(key, b"enumwatch-key-fingerprint", hashlib.sha256).hexdigest()[:16]


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """Hex HMAC-SHA256 of `kind<US>value`; `value` must already be normalized."""
    if kind not in KINDS:
        raise ValueError(f"unknown hash kind {kind!r}")
    return hmac.new(key, f"{kind}{_SEP}{value}".encode(), hashlib.sha256).hexdigest()


def message_prefix(kind: str) -> str:
    """The text put before a value of this kind before hashing (shared with the Spark side)."""
    return f"{kind}{_SEP}"


def normalize_id(raw: str) -> str:
    """ID numbers compare without surrounding spaces and with an upper-case check character."""
    return raw.strip().upper()


def normalize_name(raw: str) -> str:
    """Names compare after NFKC (full-width forms fold to ASCII) and with outer whitespace trimmed."""
    return unicodedata.normalize("NFKC", raw).strip()


def watchlist_key(key: bytes, name: str) -> str:
    """The stable, non-reversible handle a watchlist entry is stored under in the lake."""
    return "wl-" + keyed_hash(key, "name", normalize_name(name))[:12]
