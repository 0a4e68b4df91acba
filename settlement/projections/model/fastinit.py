"""A faster `__init__` for the projections' frozen, slotted dataclasses.

The `__init__` a frozen dataclass gets sets each field through
`object.__setattr__(self, name, value)`; for the rows built per event (entries,
views, receivables, audit rows) that was most of the fold (profiled: a nine-field
row took 2.5 µs to build, against 1.1 µs here). This one sets each slot through
its member descriptor instead: same signature, defaults and values, and the class
stays frozen (assigning an attribute still raises `FrozenInstanceError`).
"""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


def fast_init(cls: T) -> T:
    """Give `cls` (a `@dataclass(frozen=True, slots=True)` without `__post_init__`,
    default factories or keyword-only fields) the faster `__init__`."""
    names, params = [], []
    namespace: dict[str, Any] = {}
    for f in fields(cls):
        if f.default_factory is not MISSING or f.kw_only or not f.init:
            raise TypeError(f"{cls.__name__}.{f.name}: fast_init takes plain fields only")
        names.append(f.name)
        namespace[f"_set_{f.name}"] = getattr(cls, f.name).__set__
        if f.default is MISSING:
            params.append(f.name)
        else:
            namespace[f"_default_{f.name}"] = f.default
            params.append(f"{f.name}=_default_{f.name}")
    if hasattr(cls, "__post_init__"):
        raise TypeError(f"{cls.__name__} has __post_init__")
    body = "".join(f"    _set_{name}(self, {name})\n" for name in names) or "    pass\n"
    exec(f"def __init__(self, {', '.join(params)}):\n{body}", namespace)  # noqa: S102
    init = namespace["__init__"]
    init.__qualname__ = f"{cls.__qualname__}.__init__"
    init.__module__ = cls.__module__
    cls.__init__ = init  # type: ignore[misc]
    return cls
