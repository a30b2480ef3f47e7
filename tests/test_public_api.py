"""The packages' ``__all__``: every name exists, and every type a public method
returns or raises is among them, so users never import from a private module."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import types
import typing
from collections.abc import Iterator

import pytest

import engine
import store_api
from engine import Batch, Engine, StorageError

#: ``Engine.internals()`` is the documented testing seam (docs/DESIGN-NOTES.md):
#: its layers are not part of the application API.
SEAMS = {"internals"}


@pytest.mark.parametrize("package", [engine, store_api], ids=lambda p: p.__name__)
def test_every_name_in_all_exists(package: types.ModuleType) -> None:
    assert sorted(package.__all__) == package.__all__, "keep __all__ sorted"
    for name in package.__all__:
        if name == "PostgresStore":
            pytest.importorskip("psycopg")
        assert getattr(package, name) is not None


def _engine_classes(annotation: object) -> Iterator[type]:
    """The classes defined in ``engine`` that an annotation names, through unions and generics."""
    if isinstance(annotation, type) and annotation.__module__.startswith("engine."):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _engine_classes(arg)


def test_what_public_methods_return_is_exported() -> None:
    for cls in (Engine, Batch):
        for name, member in inspect.getmembers(cls, inspect.isfunction):
            if name.startswith("_") or name in SEAMS:
                continue
            hints = typing.get_type_hints(member)
            for found in _engine_classes(hints.get("return")):
                assert found.__name__ in engine.__all__, f"{cls.__name__}.{name} returns {found}"


def _engine_modules() -> Iterator[types.ModuleType]:
    for info in pkgutil.walk_packages(engine.__path__, "engine."):
        if not info.name.startswith("engine.testing"):
            yield importlib.import_module(info.name)


def test_every_engine_error_is_exported() -> None:
    errors = {
        obj
        for module in _engine_modules()
        for obj in vars(module).values()
        if isinstance(obj, type)
        and issubclass(obj, StorageError)
        and obj.__module__ == module.__name__
    }
    assert errors, "no StorageError subclasses found: the walk is broken"
    for error in errors:
        assert getattr(engine, error.__name__, None) is error, f"engine does not export {error}"


def test_store_api_reexports_the_engine_errors() -> None:
    names = ("StorageError", "CorruptionError", "LockedError", "FailedError", "ClosedError")
    for name in (*names, "DiskFullError"):
        assert getattr(store_api, name) is getattr(engine, name)
        assert name in store_api.__all__
