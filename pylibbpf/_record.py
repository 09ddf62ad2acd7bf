"""Frozen records with ``__slots__``, made without ``dataclasses``.

``dataclasses`` imports ``inspect`` (and ``ast``, ``dis``) and compiles every
generated method with ``exec``: ~10 ms of a fresh process's first
``attach_uprobe_multi(symbols=…)``, for a handful of small classes. A class
decorated with :func:`record` writes its ``__slots__`` and ``__init__`` itself
and gets what ``@dataclass(frozen=True)`` would give it: ``__eq__`` and
``__hash__`` over the compared fields, a ``ClassName(field=value, ...)`` repr,
``FrozenInstanceError`` on assignment, pickling and copying, ``__match_args__``;
``dataclasses.fields()``, ``asdict()``, ``astuple()`` and ``replace()`` keep
working too (their ``Field`` objects are made, importing ``dataclasses``, the
first time one of them asks).
"""
from __future__ import annotations

import operator

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Type, TypeVar

__all__ = ["record"]

if TYPE_CHECKING:
    T = TypeVar("T", bound=type)

_set = object.__setattr__


def _frozen(self: Any, name: str, _value: Any = None) -> None:
    from dataclasses import FrozenInstanceError  # only on this error path

    raise FrozenInstanceError(f"cannot assign to field {name!r}")


def _frozen_del(self: Any, name: str) -> None:
    from dataclasses import FrozenInstanceError

    raise FrozenInstanceError(f"cannot delete field {name!r}")


class _DataclassFields:
    """``cls.__dataclass_fields__``, made on first use: the ``Field`` objects of
    a frozen dataclass with the same fields (and compare/repr flags)."""

    def __init__(self) -> None:
        self._made: Dict[type, Dict[str, Any]] = {}

    def __get__(self, obj: Any, cls: Optional[type] = None) -> Dict[str, Any]:
        cls = cls if cls is not None else type(obj)
        made = self._made.get(cls)
        if made is None:
            import dataclasses

            spec = cls._record_spec  # type: ignore[attr-defined]
            fields = []
            for name in spec["fields"]:
                kw: Dict[str, Any] = {"compare": name in spec["compare"],
                                      "repr": name in spec["repr"]}
                if name in spec["defaults"]:
                    kw["default"] = spec["defaults"][name]
                fields.append((name, "Any", dataclasses.field(**kw)))
            shadow = dataclasses.make_dataclass(cls.__name__, fields, frozen=True)
            made = self._made[cls] = dict(shadow.__dataclass_fields__)  # type: ignore[attr-defined]
        return made


_DATACLASS_FIELDS = _DataclassFields()


def record(fields: Sequence[str], *, compare: Optional[Sequence[str]] = None,
           repr: Optional[Sequence[str]] = None,  # noqa: A002 - as dataclasses names it
           defaults: Optional[Dict[str, Any]] = None) -> Callable[[T], T]:
    """Make the decorated class (which declares ``__slots__ = fields`` and an
    ``__init__(self, *fields)`` that sets them with ``object.__setattr__``) a
    frozen record: ``compare`` fields (default: all) make ``==`` and the hash,
    ``repr`` fields (default: all) the repr, in ``fields`` order."""
    cmp = tuple(fields if compare is None else compare)
    rep = tuple(fields if repr is None else repr)
    all_fields = tuple(fields)

    def wrap(cls: T) -> T:
        assert tuple(cls.__dict__.get("__slots__", ())) == all_fields, cls
        key = operator.attrgetter(*cmp) if len(cmp) > 1 else \
            (lambda self: (getattr(self, cmp[0]),))
        values = operator.attrgetter(*all_fields) if len(all_fields) > 1 else \
            (lambda self: (getattr(self, all_fields[0]),))

        def __eq__(self: Any, other: Any) -> Any:
            if other.__class__ is self.__class__:
                return key(self) == key(other)
            return NotImplemented

        def __hash__(self: Any) -> int:
            return hash(key(self))

        def __repr__(self: Any) -> str:
            inner = ", ".join(f"{n}={getattr(self, n)!r}" for n in rep)
            return f"{self.__class__.__qualname__}({inner})"

        def __reduce__(self: Any) -> Tuple[Type[Any], Tuple[Any, ...]]:
            return (self.__class__, values(self))

        def __replace__(self: Any, **changes: Any) -> Any:  # copy.replace (3.13)
            kw = dict(zip(all_fields, values(self)))
            kw.update(changes)
            return self.__class__(**kw)

        for name, fn in (("__eq__", __eq__), ("__hash__", __hash__), ("__repr__", __repr__),
                         ("__reduce__", __reduce__), ("__replace__", __replace__)):
            fn.__qualname__ = f"{cls.__qualname__}.{name}"
            setattr(cls, name, fn)
        setattr(cls, "__setattr__", _frozen)
        setattr(cls, "__delattr__", _frozen_del)
        setattr(cls, "__match_args__", all_fields)
        setattr(cls, "_record_spec", {"fields": all_fields, "compare": cmp, "repr": rep,
                                      "defaults": dict(defaults or {})})
        setattr(cls, "__dataclass_fields__", _DATACLASS_FIELDS)
        return cls

    return wrap
