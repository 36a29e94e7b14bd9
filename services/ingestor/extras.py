"""Code imported by name at run time: the optional packages a built-in source needs
(`pip install 'marketsignal[yahoo]'`...), and a user's `module:function`.

The optional packages are never imported at the top of a module: marketsignal installs
and type-checks without them, and a missing one is one clear line, not a traceback.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any


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


def load_function(spec: str, what: str) -> Callable[..., Any]:
    """`package.module:function` -> the function; ValueError starting with `what` (e.g.
    "adapter 'm:f'") saying why not."""
    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ValueError(f"{what} must look like package.module:function")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ValueError(f"{what}: {exc}") from exc
    function = getattr(module, name, None)
    if not callable(function):
        raise ValueError(f"{what}: {name} is not a function of {module_name}")
    return function  # type: ignore[no-any-return]
