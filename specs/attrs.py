"""Attribute schemas: an op's attributes are a frozen :class:`Attrs` whose fields are
declared with type annotations and checked by pydantic's validation engine, pydantic-core.

``Attrs`` keeps the part of pydantic's ``BaseModel`` interface netc uses (``Op.Attrs(**kw)``,
``model_fields`` with each field's ``annotation`` and ``default``, ``model_config``,
``model_copy(update=...)``, equality, hashing, ``dict(attrs)``) and validates in strict mode
with unknown names refused, raising pydantic's ``ValidationError``. It does not import
pydantic's model layer: that layer costs more to import than a ``netc check`` costs to run,
and an op's attributes need none of it. Each class translates its annotations into a
pydantic-core schema the first time it is instantiated, so a check pays only for the ops it
meets.

The annotations may use ``int``, ``float``, ``bool``, ``str``, ``None``, unions, ``tuple[X,
...]`` and ``tuple[X, Y]``, ``Literal[...]``, any other class (an instance of it is
required: a ``LayerRef``, an ``Expr``) and ``Annotated[X, Check(fn), ...]`` (``fn`` sees the
value first and returns it or raises ``ValueError``).
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable
from typing import Any, ClassVar

from netc.compiler.records import Record
from pydantic_core import PydanticUndefined, SchemaValidator, ValidationError


class Check(Record):
    """``Annotated[str, Check(fn)]``: ``fn(value)`` runs before the type check and returns the
    value or raises ``ValueError`` (its message becomes the diagnostic)."""

    fn: Callable[[Any], Any]


class FieldInfo:
    """One attribute: its type (without a top-level ``Annotated``), its default
    (``PydanticUndefined`` when required) and the ``Annotated`` metadata."""

    __slots__ = ("annotation", "default", "metadata")

    def __init__(self, annotation, default, metadata=()):
        self.annotation, self.default, self.metadata = annotation, default, tuple(metadata)

    def is_required(self) -> bool:
        return self.default is PydanticUndefined

    def __repr__(self) -> str:
        return f"FieldInfo(annotation={self.annotation!r}, default={self.default!r})"


_SCALARS = {int: "int", float: "float", bool: "bool", str: "str"}


def _schema(annotation) -> dict:
    """The pydantic-core schema of one annotation (strict)."""
    if annotation is type(None) or annotation is None:
        return {"type": "none"}
    if annotation in _SCALARS:
        return {"type": _SCALARS[annotation], "strict": True}
    if annotation is Any:
        return {"type": "any"}
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        inner = _schema(args[0])
        for m in args[1:]:
            if isinstance(m, Check):
                inner = {"type": "function-before", "function": {"type": "no-info", "function": m.fn},
                         "schema": inner}
        return inner
    if origin in (typing.Union, types.UnionType):
        rest = [a for a in args if a is not type(None)]
        inner = _schema(rest[0]) if len(rest) == 1 else {"type": "union", "choices": [_schema(a) for a in rest]}
        return {"type": "nullable", "schema": inner} if len(rest) < len(args) else inner
    if origin is typing.Literal:
        return {"type": "literal", "expected": list(args)}
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return {"type": "tuple", "items_schema": [_schema(args[0])], "variadic_item_index": 0, "strict": True}
        return {"type": "tuple", "items_schema": [_schema(a) for a in args], "strict": True}
    if isinstance(annotation, type):
        return {"type": "is-instance", "cls": annotation}
    raise TypeError(f"attribute type {annotation!r} has no schema")


class _AttrsMeta(type):
    """Gives each ``Attrs`` class its fields and validator, built on first use."""

    @property
    def model_fields(cls) -> dict[str, FieldInfo]:
        fields = cls.__dict__.get("_fields")
        if fields is None:
            fields = {}
            hints = typing.get_type_hints(cls, include_extras=True)
            for name, hint in hints.items():
                if name.startswith("_") or typing.get_origin(hint) is ClassVar or name == "model_config":
                    continue
                meta = ()
                if typing.get_origin(hint) is typing.Annotated:
                    hint, meta = typing.get_args(hint)[0], typing.get_args(hint)[1:]
                fields[name] = FieldInfo(hint, getattr(cls, name, PydanticUndefined), meta)
            cls._fields, cls._hints = fields, hints
        return fields

    def _validator(cls) -> SchemaValidator:
        v = cls.__dict__.get("_schema_validator")
        if v is None:
            fields, model_fields = {}, cls.model_fields
            hints = cls.__dict__["_hints"]  # read with model_fields, Annotated kept
            for name, f in model_fields.items():
                s = _schema(hints[name])
                if not f.is_required():
                    s = {"type": "default", "schema": s, "default": f.default}
                fields[name] = {"type": "typed-dict-field", "schema": s, "required": f.is_required()}
            v = SchemaValidator({"type": "typed-dict", "fields": fields, "extra_behavior": "forbid",
                                 "ref": cls.__qualname__}, {"title": cls.__qualname__})
            cls._schema_validator = v
        return v


class Attrs(metaclass=_AttrsMeta):
    """Base of every attribute schema: immutable, strict about types and unknown names."""

    model_config: ClassVar[dict] = {"frozen": True, "extra": "forbid", "strict": True}

    def __init__(self, /, **data):
        self.__dict__.update(type(self)._validator().validate_python(data))

    def __setattr__(self, name, value):
        raise ValidationError.from_exception_data(type(self).__qualname__, [
            {"type": "frozen_instance", "loc": (name,), "input": value}])

    def __delattr__(self, name):
        self.__setattr__(name, None)

    def __iter__(self):
        return iter(self.__dict__.items())

    def __eq__(self, other):
        return type(other) is type(self) and other.__dict__ == self.__dict__

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.__dict__.items())})"

    def model_copy(self, *, update: dict | None = None):
        """A copy with ``update``'s values replacing some (not validated, as pydantic's)."""
        obj = type(self).__new__(type(self))
        obj.__dict__.update(self.__dict__, **(update or {}))
        return obj

    def model_dump(self) -> dict:
        return dict(self.__dict__)
