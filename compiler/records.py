"""Immutable records: the value classes of the compiler (AST nodes, spans, tensor types, a
layer's weights), declared with annotated fields like a frozen dataclass.

A :class:`Record` subclass gets an ``__init__`` taking its fields in order (inherited fields
first) or by name, with the defaults its class body gives (``dataclasses.field(default_factory=
list)`` for a fresh list); equality and hashing by its type
and the fields not named in ``_uncompared``; a repr of those fields; assignment refused
(``dataclasses.FrozenInstanceError``), unless declared ``class R(Record, frozen=False)`` (then
unhashable); ``__post_init__`` run when defined. Methods a class
writes itself win, as with ``@dataclass``.

Why not ``@dataclass(frozen=True)``: a dataclass compiles generated source text for each of
its methods when its class is made, 0.5 to 0.8 ms a class here; with some fifty such classes
on the path of ``netc check`` that was a sixth of its start-up. A record's methods are written
once, here. :func:`replace` copies a record with some fields changed, as
``dataclasses.replace`` does a dataclass (and it does a dataclass too).
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import MISSING, Field, FrozenInstanceError
from typing import Any, ClassVar


class Record:
    _fields: ClassVar[tuple[str, ...]] = ()  # in order, inherited ones first
    _defaults: ClassVar[dict[str, Any]] = {}
    _uncompared: ClassVar[tuple[str, ...]] = ()  # fields equality, hashing and repr ignore
    _compared: ClassVar[tuple[str, ...]] = ()
    _factories: ClassVar[dict[str, Any]] = {}  # fields whose default is made afresh: field(default_factory=list)
    _post_init: ClassVar[bool] = False  # the class has a __post_init__

    def __init_subclass__(cls, frozen: bool = True, **kw):
        super().__init_subclass__(**kw)
        own = tuple(n for n, t in inspect.get_annotations(cls).items()
                    if not str(t).startswith("ClassVar") and n not in cls._fields)
        cls._fields = cls._fields + own
        defaults, factories = dict(cls._defaults), dict(cls._factories)
        for n in own:
            if n not in cls.__dict__:
                continue
            v = cls.__dict__[n]
            if isinstance(v, Field):  # dataclasses.field(default_factory=...)
                if v.default_factory is not MISSING:
                    factories[n] = v.default_factory
                    delattr(cls, n)
                else:
                    defaults[n] = v.default
                    setattr(cls, n, v.default)
            else:
                defaults[n] = v
        cls._defaults, cls._factories = defaults, factories
        cls._compared = tuple(f for f in cls._fields if f not in cls._uncompared)
        cls._post_init = hasattr(cls, "__post_init__")
        if not frozen:  # a mutable record: assignable, and (being mutable) unhashable, as a dataclass
            cls.__setattr__, cls.__delattr__, cls.__hash__ = object.__setattr__, object.__delattr__, None

    def __init__(self, /, *args, **kwargs):
        fields = self._fields
        values = self.__dict__
        if len(args) == len(fields) and not kwargs:  # the common call: every field, in order
            values.update(zip(fields, args))
        else:
            if len(args) > len(fields):
                raise TypeError(f"{type(self).__name__} takes {len(fields)} fields; got {len(args)}")
            values.update(zip(fields, args))
            for k, v in kwargs.items():
                if k in values or k not in fields:
                    raise TypeError(f"{type(self).__name__} got an unexpected or repeated field {k!r}")
                values[k] = v
            if len(values) < len(fields):
                for f in fields[len(args):]:
                    if f in values:
                        continue
                    if f in self._defaults:
                        values[f] = self._defaults[f]
                    elif f in self._factories:
                        values[f] = self._factories[f]()
                    else:
                        missing = [f for f in fields if f not in values and f not in self._defaults
                                   and f not in self._factories]
                        raise TypeError(f"{type(self).__name__} needs the fields {', '.join(missing)}")
        if self._post_init:
            self.__post_init__()

    def __setattr__(self, name, value):
        raise FrozenInstanceError(f"cannot assign to field {name!r}")

    def __delattr__(self, name):
        raise FrozenInstanceError(f"cannot delete field {name!r}")

    # (one Python frame per level of a nested record, as a dataclass's own methods take: the
    # compiler's depth limits are set by them)
    def __eq__(self, other):
        return type(other) is type(self) and tuple(map(other.__dict__.__getitem__, self._compared)) \
            == tuple(map(self.__dict__.__getitem__, self._compared))

    def __hash__(self) -> int:
        return hash((type(self), *map(self.__dict__.__getitem__, self._compared)))

    def __repr__(self) -> str:
        return f"{type(self).__qualname__}({', '.join(f'{f}={self.__dict__[f]!r}' for f in self._compared)})"


def replace(obj, /, **changes):
    """A copy of the record ``obj`` with the fields named in ``changes`` set to their values
    (its ``__post_init__`` run again), as ``dataclasses.replace`` makes of a dataclass, which
    it is given to when ``obj`` is not a record."""
    if not isinstance(obj, Record):
        return dataclasses.replace(obj, **changes)
    unknown = [k for k in changes if k not in obj._fields]
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {unknown[0]!r}")
    values = obj.__dict__
    return type(obj)(*[changes[f] if f in changes else values[f] for f in obj._fields])
