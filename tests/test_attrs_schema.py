"""Op attributes are checked by pydantic-core from schemas netc builds out of the annotations
(specs/attrs.py), without pydantic's model layer. Here every op's ``Attrs`` is compared with
the pydantic model the same annotations make: the same values accepted (with the same
results) and the same ones refused, with the same error types at the same fields."""

from __future__ import annotations

import copy
import functools
import operator
import pickle
import types
import typing

import pydantic
import pytest
from netc.compiler.dims import sym
from netc.specs.attrs import Attrs, Check
from netc.specs.catalogue import all_ops
from netc.specs.init import Init
from netc.specs.opdef import CellBody, LayerRef, Param
from pydantic_core import PydanticUndefined, ValidationError

OPS = all_ops()
WITH_ATTRS = sorted(name for name, op in OPS.items() if op.Attrs.model_fields)

# values of every kind an attribute can be given, right or wrong for any field
VALUES = [0, 3, -1, 2**40, True, False, 2.5, 0.0, "same", "relu", "tanh", "x0", "", None, (1, 2), (3,), (1, 2, 3),
          [1, 2], (1, "a"), (2.5, 1.0), ("relu", None), (("add", "x1"), ("relu", None)), ((1, 2, 1), "..."),
          ("a", "b"), sym("N"), sym("N") * 2, LayerRef("wte", "embedding", {"weight": Param((10, 4))}),
          CellBody("Cell", {}, 0, 1), object()]
try:
    VALUES.append(Init("normal", (0.0, 0.02)))
except TypeError:  # Init's fields changed: the other values still cover its field
    pass


def _pydantic_model(cls):
    """The pydantic model of ``cls``'s annotations (``Check`` as pydantic's BeforeValidator, a
    class as ``InstanceOf`` it)."""
    hints = typing.get_type_hints(cls, include_extras=True)

    def convert(t):
        if typing.get_origin(t) is typing.Annotated:
            args = typing.get_args(t)
            meta = [pydantic.BeforeValidator(m.fn) if isinstance(m, Check) else m for m in args[1:]]
            return typing.Annotated[(convert(args[0]), *meta)]
        args = typing.get_args(t)
        if args and typing.get_origin(t) not in (typing.Literal,):
            origin = typing.get_origin(t)
            new = tuple(convert(a) if a is not Ellipsis else a for a in args)
            return functools.reduce(operator.or_, new) if origin in (typing.Union, types.UnionType) else origin[new]
        if isinstance(t, type) and t not in (int, float, bool, str, type(None)):
            return pydantic.InstanceOf[t]  # what the declarations said before: an instance, as is
        return t

    fields = {name: (convert(hints[name]), ... if f.is_required() else f.default)
              for name, f in cls.model_fields.items()}
    config = pydantic.ConfigDict(frozen=True, extra="forbid", strict=True, arbitrary_types_allowed=True)
    return pydantic.create_model(f"P{cls.__qualname__.replace('.', '_')}", __config__=config, **fields)


def _outcome(make, data):
    try:
        obj = make(**data)
    except ValidationError as e:
        # the field, positions in it, and the error type (not the labels of union members,
        # which name schemas: pydantic wraps an arbitrary class's check in json-or-python)
        return "refused", sorted({(tuple(str(p) for i, p in enumerate(err["loc"]) if i == 0 or isinstance(p, int)),
                                   err["type"]) for err in e.errors()})
    return "accepted", dict(obj)


@pytest.mark.parametrize("name", WITH_ATTRS)
def test_attrs_validate_as_pydantic_would(name):
    cls = OPS[name].Attrs
    model = _pydantic_model(cls)
    required = {k: f for k, f in cls.model_fields.items() if f.is_required()}
    base = {k: next(v for v in VALUES if _valid_for(model, k, v)) for k in required}
    compared = 0
    for field in cls.model_fields:
        for v in VALUES:
            data = {**base, field: v}
            want, got = _outcome(model, data), _outcome(cls, data)
            if want[0] == "accepted":
                want = ("accepted", dict(model(**data)))
            assert got == want, f"{name}.{field}={v!r}"
            compared += 1
    # an unknown name, and a required field left out
    assert _outcome(cls, {**base, "colour": 1}) == _outcome(model, {**base, "colour": 1})
    for k in required:
        partial = {f: v for f, v in base.items() if f != k}
        assert _outcome(cls, partial) == _outcome(model, partial)
    assert compared >= len(VALUES)


def _valid_for(model, k, v) -> bool:
    """Whether ``v`` is a valid value of field ``k`` (no error names ``k``)."""
    kind, errors = _outcome(model, {k: v})
    return kind == "accepted" or all(loc[:1] != (k,) for loc, _ in errors)


def test_fields_defaults_and_order():
    conv = OPS["conv2d"].Attrs
    assert list(conv.model_fields)[:2] == ["out", "kernel"]
    assert conv.model_fields["out"].default is PydanticUndefined and conv.model_fields["out"].is_required()
    assert conv.model_fields["stride"].default == 1 and not conv.model_fields["stride"].is_required()
    a = conv(out=8, kernel=3)
    assert list(dict(a)) == list(conv.model_fields) and a.stride == 1


def test_attrs_are_values():
    conv = OPS["conv2d"].Attrs
    a, b = conv(out=8, kernel=(3, 3)), conv(out=8, kernel=(3, 3))
    assert a == b and hash(a) == hash(b) and a != conv(out=9, kernel=(3, 3))
    assert a != OPS["conv1d"].Attrs(out=8, kernel=3)
    with pytest.raises(ValidationError) as e:
        a.out = 3
    assert e.value.errors()[0]["type"] == "frozen_instance"
    c = a.model_copy(update={"bias": False})
    assert c.bias is False and a.bias is True and c.out == 8 and type(c) is conv
    for clone in (pickle.loads(pickle.dumps(a)), copy.deepcopy(a)):
        assert clone == a and hash(clone) == hash(a)
    assert repr(a).startswith("Attrs(out=8, kernel=(3, 3)")


def test_a_check_runs_before_the_type():
    with pytest.raises(ValidationError) as e:
        OPS["linear"].Attrs(out=4, activation="softmax")
    assert e.value.errors()[0]["type"] == "value_error" and '"relu"' in e.value.errors()[0]["msg"]
    assert OPS["linear"].Attrs(out=4, activation="relu").activation == "relu"


def test_an_unsupported_annotation_is_a_declaration_error():
    class Bad(Attrs):
        x: dict[str, int]

    with pytest.raises(TypeError, match="has no schema"):
        Bad(x={})


def test_any_argument_name_is_an_attribute_error_never_a_crash():
    # found by the fuzzer: `linear(4, self=1)` reached Attrs.__init__'s own parameter
    with pytest.raises(ValidationError) as e:
        OPS["linear"].Attrs(out=4, self=1)
    assert [err["type"] for err in e.value.errors()] == ["extra_forbidden"]
