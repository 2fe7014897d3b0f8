"""Reading the project's TOML files (requirements, boards, model cards) with one clear error."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import tomllib

from mcuqual.common.errors import ConfigError, McuqualError


def read_toml(path: Path, error: type[McuqualError] = ConfigError) -> dict[str, Any]:
    try:
        return tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as exc:
        raise error(f"{path}: not valid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot be read as text: {exc}") from exc
