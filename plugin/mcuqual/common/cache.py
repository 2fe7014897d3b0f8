"""A content-addressed cache for costly products (quantized models, golden outputs).

Keys are hashes of everything a product depends on, so a stale entry can never
be returned: a changed input is simply a different key.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

CACHE_ENV = "MCUQUAL_CACHE_DIR"


def content_hash(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()[:24]


class Cache:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    @classmethod
    def default(cls, repo_root: Path) -> "Cache":
        return cls(Path(os.environ.get(CACHE_ENV, repo_root / ".cache" / "mcuqual")))

    def path(self, kind: str, key: str, suffix: str) -> Path:
        folder = self.root / kind
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{key}{suffix}"

    def write_atomic(self, path: Path, data: bytes) -> None:
        """Write then rename, so an interrupted run never leaves half an entry."""
        tmp = path.with_name(path.name + f".tmp{os.getpid()}")
        tmp.write_bytes(data)
        os.replace(tmp, path)
