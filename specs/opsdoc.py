"""Generates docs/ops.md from the catalogue: ``python -m netc.specs.opsdoc > docs/ops.md``.

A test fails when the committed file is stale, so the reference can never drift from the ops.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing

from netc.specs import catalogue
from netc.specs.catalogue import OpWithTrait, all_ops
from pydantic_core import PydanticUndefined

GROUPS = ["dense", "conv", "pool", "norm", "activation", "shape", "recurrent", "attention", "math"]


def _type_name(annotation) -> str:
    text = annotation.__name__ if isinstance(annotation, type) else str(annotation)
    text = re.sub(r"typing\.Literal\[([^\]]*)\]", lambda m: m.group(1).replace("'", '"'), text)
    text = re.sub(r"typing\.Annotated\[([^,\]]*)[^\]]*\]", r"\1", text)
    text = re.sub(r"[A-Za-z_.]*\.", "", text.replace("...", "\0")).replace("\0", "...")  # module prefixes
    if text.startswith("Optional[") and text.endswith("]"):  # X | None
        text = f"Union[{text[9:-1]}, NoneType]"
    if text.startswith("Union[") and text.endswith("]"):
        depth, parts, cur = 0, [], ""
        for ch in text[6:-1] + ",":
            depth += (ch == "[") - (ch == "]")
            if ch == "," and depth == 0:
                parts.append(cur.strip())
                cur = ""
            else:
                cur += ch
        text = " or ".join(parts)
    return text.replace("NoneType", "none").replace(" | ", " or ")


def _with_trait(annotation) -> str | None:
    """An attribute that names an op with a trait (a layer's ``activation``): the names of
    the ops that have it now, or None for another type."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        parts = [_with_trait(a) for a in typing.get_args(annotation)]
        if any(parts):
            return " or ".join(p or _type_name(a) for p, a in zip(parts, typing.get_args(annotation)))
        return None
    marker = next((m for m in getattr(annotation, "__metadata__", ()) if isinstance(m, OpWithTrait)), None)
    return " or ".join(f'"{n}"' for n in marker.names()) if marker else None


def _attrs(op) -> str:
    rows = []
    for name, f in op.Attrs.model_fields.items():
        default = "required" if f.default is PydanticUndefined else repr(f.default)
        if isinstance(f.default, str):
            default = f'"{f.default}"'
        default = {"True": "true", "False": "false", "None": "none"}.get(default, default)
        rows.append(f"`{name}`: {_with_trait(f.annotation) or _type_name(f.annotation)} = {default}")
    return "; ".join(rows) or "—"


def render() -> str:
    ops = all_ops()
    out = [
        "# Built-in ops",
        "",
        "Generated from the op catalogue (`specs/ops/`) by `python -m netc.specs.opsdoc > docs/ops.md`;",
        "a test fails when this file is stale. Input sizes are always inferred: write only what is new",
        "(`linear(120)`). Positional arguments bind to the attributes in the order listed.",
        "",
    ]
    for group in GROUPS:
        members = [op for op in ops.values() if op.group == group]
        if not members:
            continue
        module = sys.modules[members[0].__module__]
        out += [f"## {group}", "", inspect.cleandoc(module.__doc__ or ""), ""]
        out += ["| op | signature | what it does | attributes | traits |", "|---|---|---|---|---|"]
        for op in members:
            traits = ", ".join(sorted(op.traits)) or "—"
            doc = op.doc().replace("\n", " ").replace("|", "\\|")
            sig = (op.signature or op.name).replace("|", "\\|")
            out.append(f"| `{op.name}` | `{sig}` | {doc} | {_attrs(op).replace('|', 'or')} | {traits} |")
        out.append("")
    missing = sorted(set(ops) - {n for n, op in ops.items() if op.group in GROUPS})
    if missing:
        raise ValueError(f"ops in no documented group: {missing}")
    out += ["## traits", "",
            "The facts about an op that the optimiser's passes and the backends act on (the docstring of",
            "`Op` in `specs/catalogue.py`): they read an op's traits, never lists of op names.", "",
            "| trait | meaning | ops |", "|---|---|---|"]
    for trait, meaning in catalogue.traits().items():
        names = ", ".join(f"`{n}`" for n, op in ops.items() if trait in op.traits) or "—"
        meaning = meaning.replace("|", "\\|")
        out.append(f"| `{trait}` | {meaning} | {names} |")
    out.append("")
    return "\n".join(out)


if __name__ == "__main__":
    sys.stdout.write(render())
