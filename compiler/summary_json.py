"""``netc summary --json``: the versioned document (schema ``netc.summary/1``,
``docs/schemas/summary.schema.json``, described in ``docs/json.md``).

Every count has one type. Parameters and buffers are ints. A MAC count is a *count object*:
``value`` (an int, or null where it depends on input sizes), ``text`` (the same count as an
expression: ``4241152*N``) and ``terms``, the polynomial without anything to evaluate: a list
of ``{"coeff": int, "dims": {"N": 1, "T": 2}}`` whose sum is the count. A dim in ``dims`` is
a symbol of the inputs' shapes, or the text of a floor division (``H // 8``) that ``atoms``
spells out as ``{"terms": [...], "divisor": 8}`` (its numerator's terms, divided, rounded
down).
"""

from __future__ import annotations

from collections import Counter

from .dims import Dim, Expr, FloorDiv

SUMMARY_SCHEMA = "netc.summary/1"


def count_json(d: Dim) -> dict:
    """A count (an int or a polynomial over input sizes) as a count object."""
    atoms: dict[str, dict] = {}
    if isinstance(d, Expr):
        terms, value = _terms(d, atoms), None
    else:
        terms, value = ([{"coeff": int(d), "dims": {}}] if d else []), int(d)
    return {"value": value, "text": str(d), "terms": terms, "atoms": atoms}


def _terms(e: Expr, atoms: dict) -> list[dict]:
    out = []
    for mono, coeff in e.terms:
        dims: Counter = Counter()
        for a in mono:
            if isinstance(a, FloorDiv):
                key = str(a)
                atoms.setdefault(key, {"terms": _terms(Expr.of(a.num), atoms), "divisor": a.den})
                dims[key] += 1
            else:
                dims[a] += 1
        out.append({"coeff": coeff, "dims": dict(dims)})
    return out


def row_json(r) -> dict:
    return {"name": r.name, "op": r.op, "shape": r.shape, "params": r.params, "macs": count_json(r.macs),
            "depth": r.depth, "kind": r.kind, "value": r.value}


def model_json(s) -> dict:
    return {
        "model": s.model,
        "inputs": [{"name": n, "type": t} for n, t in s.inputs],
        "outputs": [{"name": n, "type": t} for n, t in s.outputs],
        "rows": [row_json(r) for r in s.rows],
        "totals": {"params": s.params, "buffers": s.buffers, "macs": count_json(s.macs)},
    }


def summary_document(spec: str, summaries: list, pairs: list[dict]) -> dict:
    """The whole ``summary --json`` output: the schema's name, the spec, each model's summary
    and the pairs (``{"name": ..., "roles": {"generator": "G", ...}}``)."""
    return {"schema": SUMMARY_SCHEMA, "spec": spec, "models": [model_json(s) for s in summaries], "pairs": pairs}
