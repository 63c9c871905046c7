"""Refuse to start when library code the app patches is not the code it was written against.

A module that patches (or overrides) a pinned library's internals lists what it relies on as
``Pinned(distribution, version, {qualified name: hash of its source})``; ``check`` compares the
installed source of each with the hash taken from the pinned version. A change there means the
patch may no longer do what it says: the app stops with a RuntimeError that names the patch,
the version it was written for and the one installed, instead of misbehaving later.
"""

import functools
import hashlib
import importlib
import inspect
from dataclasses import dataclass
from importlib import metadata


@dataclass(frozen=True)
class Pinned:
    distribution: str  # as pyproject.toml pins it
    version: str
    sources: tuple[tuple[str, str], ...]  # ("module:Class.method", sha256 of its source)
    patch: str  # the module that relies on them, for the message


def source_hash(target: str) -> str:
    """sha256 (first 16 hex digits) of the source of ``module:qualified.name``."""
    module, _, name = target.partition(":")
    obj = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


@functools.cache
def check(pinned: Pinned) -> None:
    """Raise RuntimeError when a patched source differs from the one ``pinned`` names."""
    installed = metadata.version(pinned.distribution)
    changed = [target for target, digest in pinned.sources if source_hash(target) != digest]
    if changed:
        raise RuntimeError(
            f"{pinned.patch} patches {pinned.distribution} {pinned.version} (pinned in "
            f"pyproject.toml), but the installed {pinned.distribution} {installed} has other "
            f"code in {', '.join(changed)}. Install {pinned.distribution}=={pinned.version}, "
            "or check the patch against the new code and update its hashes."
        )
