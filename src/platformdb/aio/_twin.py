"""The async twins of the SDK functions, made from the synchronous functions themselves.

A twin is `async def name(conn, *args, **kwargs)` that runs the unchanged SDK function in the
greenlet bridge over the async connection. Nothing of a function body is repeated: a function
added to an SDK module gets its twin on import, and `python -m platformdb.aio._generate`
refreshes the typed stubs (a test fails while they are stale).
"""

from __future__ import annotations

import functools
import importlib
import inspect
import pkgutil
from collections.abc import Callable, Coroutine
from types import ModuleType
from typing import Any

from platformdb.aio._bridge import facade, maybe_await, run_sync

CONNECTION_PARAMS = ("conn",)


def sdk_modules() -> list[str]:
    """The names of the SDK's capability modules (platformdb.sdk.*)."""
    import platformdb.sdk

    return sorted(m.name for m in pkgutil.iter_modules(platformdb.sdk.__path__) if not m.name.startswith("_"))


def takes_connection(fn: Callable[..., Any]) -> bool:
    """A public SDK function whose first parameter is the connection."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return False
    return bool(params) and params[0].name in CONNECTION_PARAMS


def callback_params(fn: Callable[..., Any]) -> frozenset[str]:
    """The parameters annotated as callables: the twin lets them be `async def`."""
    names = set()
    for p in inspect.signature(fn).parameters.values():
        ann = p.annotation if isinstance(p.annotation, str) else repr(p.annotation)
        if "Callable" in ann:
            names.add(p.name)
    return frozenset(names)


def public_functions(module: ModuleType) -> dict[str, Callable[..., Any]]:
    """The public functions defined in `module` (not the ones it imports), in source order."""
    return {
        name: obj
        for name, obj in vars(module).items()
        if not name.startswith("_") and inspect.isfunction(obj) and obj.__module__ == module.__name__
    }


def _wrap_callback(cb: Any) -> Any:
    if not callable(cb):
        return cb

    @functools.wraps(cb)
    def call(*args: Any, **kwargs: Any) -> Any:
        return maybe_await(cb(*args, **kwargs))

    return call


def twin(fn: Callable[..., Any]) -> Callable[..., Coroutine[Any, Any, Any]]:
    """The awaitable twin of the SDK function `fn` (first parameter: the connection)."""
    callbacks = callback_params(fn)
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    async def async_twin(conn: Any, *args: Any, **kwargs: Any) -> Any:
        if callbacks:
            bound = sig.bind_partial(None, *args, **kwargs)
            for name in callbacks & bound.arguments.keys():
                bound.arguments[name] = _wrap_callback(bound.arguments[name])
            args, kwargs = bound.args[1:], bound.kwargs
        return await run_sync(fn, facade(conn), *args, **kwargs)

    async_twin.__sync__ = fn  # type: ignore[attr-defined]
    return async_twin


def _exported(module: ModuleType, name: str, obj: Any, exported: list[str] | None) -> bool:
    if exported is not None and name in exported:
        return True
    if inspect.isclass(obj) or inspect.isfunction(obj):
        return getattr(obj, "__module__", None) == module.__name__
    # constants (SQL text, state tables, sentinels); not a value imported from elsewhere (UTC)
    return name.isupper() and type(obj).__module__ == "builtins"


def populate(namespace: dict[str, Any], sdk_module: str) -> list[str]:
    """Fill an `platformdb.aio.<capability>` module: twins of the connection-taking functions,
    the other public names (dataclasses, pure helpers, constants) re-exported as they are."""
    module = importlib.import_module(sdk_module)
    twins: list[str] = []
    exported = getattr(module, "__all__", None)
    for name, obj in vars(module).items():
        if name.startswith("_") or isinstance(obj, ModuleType):
            continue
        if inspect.isfunction(obj) and obj.__module__ == module.__name__ and takes_connection(obj):
            namespace[name] = twin(obj)
            twins.append(name)
        elif _exported(module, name, obj, exported):
            namespace.setdefault(name, obj)
    namespace["__sync_module__"] = module
    namespace["__twins__"] = tuple(twins)
    return twins
