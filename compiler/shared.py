"""A block bound with ``let`` (``let tower = Tower(256)``): every application shares all of
its weights. Its first application is an ordinary block instance; each later one is a block
instance of its own (its nodes keep their own ids, shapes and spans) whose weighted nodes
point, through ``Node.layer``, at the same-named nodes of the first, and whose
``BlockInstance.shares`` names the first. Weights, summaries and the NumPy program key
weights by ``layer``, so they hold one set; the torch backend builds the first instance's
module and calls it again."""

from __future__ import annotations

from . import records
from .ir import Graph, weight_key
from .source import Span
from .values import POISON, Frame, Layer


class SharedBlocks:
    """Mixin of the Elaborator."""

    def apply_shared_block(self, layer: Layer, piped, pos, kw, span: Span, frame: Frame):
        if pos or kw:
            return self.error(f"the shared block `{layer.var}` takes no arguments here; they were given at its "
                              "`let`", span, frame)
        if frame.block != layer.home:
            return self.error(f"the shared block `{layer.var}` is applied outside the body that binds it", span,
                              frame, [(f"`{layer.var}` is bound", layer.span)],
                              hint="apply it in the body of its `let`")
        first = layer.uses == 0
        local = layer.scope.rsplit(".", 1)[-1] if first else frame.fresh(layer.var)
        g = frame.graph
        mark = g.last().id if len(g) else None
        out = self.call_block(layer.decl, piped, layer.pos, layer.kw, span, frame, local)
        if out is POISON:
            return out
        path = frame.node_id(local)
        weights = _instance_weights(g, path, mark)
        if first:
            layer.params = weights
        elif weights != layer.params:
            mine = min(k for k in weights.keys() | layer.params.keys() if weights.get(k) != layer.params.get(k))
            got = f"{mine} {list(weights[mine].shape)}" if mine in weights else f"no {mine}"
            return self.error(f"the shared block `{layer.var}` would need other weights here ({got})", span, frame,
                              [("its weights were fixed by its first use", layer.span)],
                              hint="a shared block's inputs must give every layer the same sizes at each use")
        else:
            _point_at(g, path, layer.scope, mark)
            g.set_block(records.replace(g.blocks[path], shares=layer.scope))
        layer.uses += 1
        return out


def _instance_nodes(g: Graph, path: str, mark: str | None):
    """The nodes made since ``mark`` inside the block instance ``path``."""
    nid = g.next_of(mark)
    while nid is not None:
        n = g.node(nid)
        if n.block == path or n.block.startswith(path + "."):
            yield n
        nid = g.next_of(nid)


def _instance_weights(g: Graph, path: str, mark: str | None) -> dict:
    """The weights of the instance ``path`` by their names inside it (``linear.weight``)."""
    out = {}
    for n in _instance_nodes(g, path, mark):
        owner = n.layer or n.id
        if owner.startswith(path + "."):
            for pname, p in n.params.items():
                out[weight_key(owner[len(path) + 1:], pname)] = p
    return out


def _point_at(g: Graph, path: str, first: str, mark: str | None) -> None:
    """Make the weighted nodes of instance ``path`` (and a tied ``unembed``) use the weights
    of the same-named nodes of the instance ``first``."""
    def moved(scope: str) -> str:
        return first + scope[len(path):] if scope.startswith(path + ".") else scope

    for n in list(_instance_nodes(g, path, mark)):
        ref = getattr(n.attrs, "layer", None)
        attrs = n.attrs
        if hasattr(ref, "scope") and moved(ref.scope) != ref.scope:
            attrs = attrs.model_copy(update={"layer": records.replace(ref, scope=moved(ref.scope))})
        if n.params or attrs is not n.attrs:
            layer = moved(n.layer or n.id) if n.params else n.layer
            g.replace(records.replace(n, layer=layer, attrs=attrs))
