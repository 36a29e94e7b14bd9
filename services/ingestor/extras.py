"""The optional packages a built-in source needs (`pip install 'marketsignal[yahoo]'`...).

Imported by name at run time, never at the top of a module: marketsignal installs and
type-checks without them, and a missing one is one clear line, not a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class MissingExtraError(Exception):
    """An optional package is not installed; the message says which extra brings it."""


def require(module: str, extra: str, option: str) -> ModuleType:
    """`module`, imported; MissingExtraError naming `extra` if it cannot be."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{option} needs the {extra} extra: pip install 'marketsignal[{extra}]' ({exc})"
        ) from None
