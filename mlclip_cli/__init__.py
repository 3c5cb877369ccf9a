"""mlclip: teach an English CLIP new languages without retraining it.

    >>> import mlclip_cli
    >>> model = mlclip_cli.load("mlclip-tiny")
    >>> model.encode_text(["a red cube"]).shape
    (1, 128)

The public API (`load`, `Model`, `Index`, ...) lives in `mlclip_cli.api`; it is re-exported here
lazily (PEP 562), so `import mlclip_cli` stays light and imports no torch until it is used.
"""

import importlib

__version__ = "0.1.0"

_API = ("load", "Model", "Detection", "Index", "Hit", "AddResult")


def __getattr__(name: str):
    if name in _API:  # the package's public face: resolved on first use, not an import of the layers above
        return getattr(importlib.import_module("mlclip_cli.api"), name)
    raise AttributeError(f"module 'mlclip_cli' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API])
