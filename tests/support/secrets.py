"""Searching files for a secret: plain, as a bearer header, or inside base64 at any
alignment (used to prove the admin token is written nowhere)."""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from pathlib import Path

SKIPPED_DIRS = {".git", ".venv", "__pycache__", ".mypy_cache", ".ruff_cache",
                ".pytest_cache", ".hypothesis"}



def _b64_forms(secret: bytes) -> set[bytes]:
    """What ``secret`` looks like inside any base64 text, at each of the 3 alignments
    (the characters that also depend on the bytes around it left out)."""
    forms = set()
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(b"\0" * offset + secret + b"\0\0\0")
            start = -(-offset * 8 // 6)
            end = (offset + len(secret)) * 8 // 6
            forms.add(encoded[start:end])
    return forms


def needles(token: str) -> dict[str, bytes]:
    """What to search for: the token, its header, and their base64 forms."""
    raw = token.encode()
    needles = {"token": raw, "header": b"Bearer " + raw}
    for number, form in enumerate(_b64_forms(raw) | _b64_forms(b"Bearer " + raw)):
        needles[f"base64 #{number}"] = form
    return needles


def files(roots: list[Path], since_s: float | None = None) -> Iterator[Path]:
    """Every regular file below ``roots`` (changed since ``since_s`` when given)."""
    for root in roots:
        for directory, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS]
            for name in names:
                path = Path(directory, name)
                try:
                    recent = since_s is None or path.lstat().st_mtime >= since_s
                except OSError:
                    continue  # deleted meanwhile (another test session's file)
                if recent and path.is_file() and not path.is_symlink():
                    yield path


def holders(paths: Iterator[Path], needles: dict[str, bytes]) -> list[str]:
    """``path (what)`` for every file holding one of ``needles``."""
    found = []
    for path in paths:
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [f"{path} ({what})" for what, needle in needles.items() if needle in data]
    return found
