"""Foreign checkpoint names -> netc names, by structure: no per-model tables.

netc's side is its graph's layers in the order they compute, each split into *units* (the
weights of one module: ``conv2d.weight``; attention's ``in_proj_weight``/``in_proj_bias``, and
its ``out_proj.weight``/``out_proj.bias``). The checkpoint's side is the tree of its module
paths (``transformer.h.0.attn.c_attn``), whose own tensors form *groups*. A state_dict lists
a module's own tensors, then its children, in registration order; the search lays the tree
out that way, trying the children in their listed order first (for a file that keeps no
order, such as ``.safetensors``, in natural name order: ``h.2`` before ``h.10``) and any other
order where shapes demand it (LLaMA registers its norms after the attention and MLP they
precede). A group fits a unit when their tensors pair up by role (``weight``, ``bias``,
``running_mean``...; ``gamma``/``beta`` too) with equal shapes. Beyond one group per unit:

- separate q, k and v projections (BERT, LLaMA: three sibling modules named q/query/q_proj...,
  or, in an ordered source, the next three) are stacked into attention's in-projection;
- one fused projection is split over two consecutive linear layers (a ``gate_up_proj`` onto
  SwiGLU's gate and up; first rows to the layer that computes first);
- a module of tagged sets (an LSTM's ``weight_ih``/``bias_ih`` and ``weight_hh``/``bias_hh``)
  goes onto as many consecutive layers (a cell written out as linear layers);
- a checkpoint that stores every matrix as [in, out] (Hugging Face's GPT-2 ``Conv1D``) is
  found by trying the search again with every matmul weight transposed, never one by one.

The first complete layout found is the mapping; when none is, :func:`map_by_structure`
raises ``WeightError`` naming every weight left over on either side of the layout that got
furthest.
"""

from __future__ import annotations

import itertools
import re
import sys
from dataclasses import dataclass, field

from netc.compiler.ir import Graph, weight_key
from netc.runtime.weights import IGNORED, WeightError

ROLES = {"weight": "weight", "gamma": "weight", "scale": "weight", "kernel": "weight", "g": "weight",
         "in_proj_weight": "weight", "bias": "bias", "beta": "bias", "b": "bias", "in_proj_bias": "bias",
         "running_mean": "running_mean", "moving_mean": "running_mean", "running_var": "running_var",
         "moving_var": "running_var", "moving_variance": "running_var"}
_TAGGED = re.compile(r"^(weight|bias)_(.+)$")
_QKV = re.compile(r"^(?:to_|w_?)?(q|query|k|key|v|value)(?:_proj|_lin)?$")
MAX_STEPS = 100_000  # search steps before giving up (a checkpoint of another model fails fast anyway)


@dataclass(frozen=True)
class Entry:
    """One netc weight made from checkpoint tensors: ``copy``, ``transpose``, ``concat`` (rows
    stacked), ``transpose+concat``, ``split`` (``rows``: [start, stop) of the source's rows) or
    ``transpose+split``."""

    netc: str
    sources: tuple[str, ...]
    conversion: str = "copy"
    rows: tuple[int, int] | None = None

    def as_json(self) -> dict:
        out = {"netc": self.netc, "from": list(self.sources), "conversion": self.conversion}
        return out | ({"rows": list(self.rows)} if self.rows else {})


@dataclass
class Unit:
    """The weights of one netc module: names, leaves (``weight``), shapes; ``counter``: its
    ``num_batches_tracked``, if it has one."""

    op: str
    names: list[str]
    leaves: list[str]
    shapes: list[tuple[int, ...]]
    counter: str | None = None

    def transposable(self, k: int) -> bool:
        return len(self.shapes[k]) == 2 and not _is_table(self.op)


def _is_table(op: str) -> bool:
    """A 2-d weight of ``op`` is a lookup table (embedding, parameter), never transposed."""
    from netc.specs import catalogue

    d = catalogue.get(op)
    return bool(d and d.weight_is_table)


def netc_units(graph: Graph) -> list[Unit]:
    """netc's weights in compute order, one unit per module (a shared layer once)."""
    units, seen = [], set()
    for n in graph.nodes():
        owner = n.layer or n.id
        if not n.params or owner in seen:
            continue
        seen.add(owner)
        subs: dict[str, Unit] = {}
        for pname, p in n.params.items():
            sub, _, leaf = pname.rpartition(".")
            u = subs.setdefault(sub, Unit(n.op, [], [], []))
            if leaf in IGNORED:
                u.counter = weight_key(owner, pname)
                continue
            u.names.append(weight_key(owner, pname))
            u.leaves.append(leaf)
            u.shapes.append(tuple(int(d) for d in p.shape))
        units += [u for u in subs.values() if u.names]
    return units


@dataclass(eq=False)
class Module:
    """A node of the checkpoint's module tree: its own tensors (full names) and children."""

    path: str
    own: list[str] = field(default_factory=list)
    children: list[Module] = field(default_factory=list)
    counter: str | None = None  # its num_batches_tracked

    @property
    def local(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    def names(self) -> list[str]:
        return self.own + [n for c in self.children for n in c.names()]


_EARLY = re.compile(r"emb|^wte$|^wpe$|^stem$|patch|^tokens?$")
_LATE = re.compile(r"head|classifier|^fc$|^pooler$|^out(put)?$")


def natural_key(name: str):
    """Natural name order (``h.2`` before ``h.10``), embedding-like names first and head-like
    names last: the order a file that keeps none is laid out in where shapes do not decide."""
    rank = 0 if _EARLY.search(name.lower()) else 2 if _LATE.search(name.lower()) else 1
    return [rank] + [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", name) if t]


def module_tree(names: list[str], ordered: bool) -> Module:
    """The module tree of checkpoint names; children in first-seen order, or in natural name
    order when the source keeps none."""
    root, nodes = Module(""), {}
    nodes[""] = root
    for name in names:
        path = name.rpartition(".")[0]
        node = _node(nodes, path)
        if name.rsplit(".", 1)[-1] in IGNORED:
            node.counter = name
        else:
            node.own.append(name)
    if not ordered:
        for node in nodes.values():
            node.children.sort(key=lambda c: natural_key(c.local))
    return root


def _node(nodes: dict[str, Module], path: str) -> Module:
    if path not in nodes:
        parent = _node(nodes, path.rpartition(".")[0])
        nodes[path] = Module(path)
        parent.children.append(nodes[path])
    return nodes[path]


class _GiveUp(Exception):
    pass


class Search:
    """Lay the checkpoint's tree out against netc's units (see the module docstring)."""

    def __init__(self, units: list[Unit], shapes: dict[str, tuple], root: Module, ordered: bool, transpose: bool):
        self.units, self.shapes, self.root = units, shapes, root
        self.ordered, self.transpose = ordered, transpose
        self.failed: set = set()
        self._signatures: dict = {}
        self.steps = 0
        self.best = (-1, ())  # (units placed, the items then left)
        self.gave_up = False

    def run(self) -> list[Entry] | None:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))  # (Python frames: no C stack on 3.11+)
        try:
            return self._solve((("m", self.root),), 0)
        except _GiveUp:
            self.gave_up = True
            return None
        finally:
            sys.setrecursionlimit(limit)

    def leftover(self) -> tuple[list[int], list[str]]:
        """The units and checkpoint tensors the furthest layout left unplaced."""
        i, items = self.best
        names = []
        for item in items:
            if item[0] == "g":
                names += item[1].own
            elif item[0] == "m":
                names += item[1].names()
            else:
                names += [n for c in item[2].children if c in item[1] for n in c.names()]
        return list(range(max(i, 0), len(self.units))), names

    # -- the search -------------------------------------------------------------------------
    def _solve(self, items: tuple, i: int) -> list[Entry] | None:
        self.steps += 1
        if self.steps > MAX_STEPS:
            raise _GiveUp
        if i > self.best[0]:
            self.best = (i, items)
        if not items:
            return [] if i == len(self.units) else None
        key = (items, i)
        if key in self.failed:
            return None
        head, rest = items[0], items[1:]
        found = None
        if head[0] == "m":
            m = head[1]
            found = self._solve((("g", m),) * bool(m.own) + (("p", frozenset(m.children), m),) * bool(m.children)
                                + rest, i)
        elif head[0] == "p":
            found = self._place_children(head, rest, i)
        else:
            for entries, k in self._fits(head[1], i):
                tail = self._solve(rest, i + k)
                if tail is not None:
                    found = entries + tail
                    break
        if found is None:
            self.failed.add(key)
        return found

    def _place_children(self, head, rest, i):
        left, parent = head[1], head[2]
        if not left:
            return self._solve(rest, i)
        order = [c for c in parent.children if c in left]
        triple = self._qkv(order, i)
        if triple:
            entries = self._pack(triple, i)
            if entries:
                tail = self._solve((("p", left - set(triple), parent),) + rest, i + 1)
                if tail is not None:
                    return entries + tail
        tried = set()
        for c in order:
            if self._signature(c) in tried:  # a copy of a sibling that did not fit here: neither will it
                continue
            tried.add(self._signature(c))
            found = self._solve((("m", c), ("p", left - {c}, parent)) + rest, i)
            if found is not None:
                return found
        return None

    def _signature(self, m: Module) -> tuple:
        """What the search sees of a subtree: its q/k/v role if its name has one, its tensors'
        names below it, and their shapes."""
        if m not in self._signatures:
            cut = len(m.path) + 1 if m.path else 0
            role = _QKV.match(m.local.lower())
            self._signatures[m] = (role and role.group(1)[0],) + tuple((n[cut:], self.shapes[n]) for n in m.names())
        return self._signatures[m]

    # -- one group against one unit (or two) --------------------------------------------------
    def _fits(self, m: Module, i: int):
        if i >= len(self.units):
            return
        u = self.units[i]
        pairs = self._pair(m.own, u)
        if pairs is not None:
            entries = []
            for name, k in pairs:
                conv = self._shape_fit(name, u, k)
                if conv is None:
                    break
                entries.append(Entry(u.names[k], (name,), conv))
            else:
                if u.counter and m.counter:
                    entries.append(Entry(u.counter, (m.counter,)))
                yield entries, 1
        if i + 1 < len(self.units):
            split = self._split(m, u, self.units[i + 1])
            if split:
                yield split, 2
        yield from self._tagged(m, i)

    def _pair(self, names: list[str], u: Unit) -> list[tuple[str, int]] | None:
        """Each of the group's tensors with the index of the unit's weight it is: by equal leaf
        names, else by role; a single tensor with a single weight; else (in an ordered source)
        in order."""
        if len(names) != len(u.leaves):
            return None
        leaves = [n.rsplit(".", 1)[-1] for n in names]
        if sorted(leaves) == sorted(u.leaves):
            return [(n, u.leaves.index(leaf)) for n, leaf in zip(names, leaves)]
        theirs, ours = [ROLES.get(x) for x in leaves], [ROLES.get(x) for x in u.leaves]
        if None not in theirs and None not in ours and len(set(ours)) == len(ours) and sorted(theirs) == sorted(ours):
            return [(n, ours.index(r)) for n, r in zip(names, theirs)]
        if len(names) == 1 and (theirs[0] is None or ours[0] is None or theirs[0] == ours[0]):
            return [(names[0], 0)]
        if self.ordered:
            return list(zip(names, range(len(names))))
        return None

    def _shape_fit(self, name: str, u: Unit, k: int) -> str | None:
        got, want = self.shapes[name], u.shapes[k]
        if self.transpose and u.transposable(k):
            return "transpose" if got == want[::-1] else None
        return "copy" if got == want else None

    def _split(self, m: Module, a: Unit, b: Unit) -> list[Entry] | None:
        """One fused projection onto two consecutive linear layers of one input width."""
        if a.op != "linear" or b.op != "linear" or a.leaves != b.leaves or not a.transposable(0):
            return None
        pairs = self._pair(m.own, a)
        if pairs is None:
            return None
        entries = []
        for name, k in pairs:
            got, ra, rb = self.shapes[name], a.shapes[k], b.shapes[k]
            rows = got[::-1] if self.transpose and a.transposable(k) else got
            if ra[1:] != rb[1:] or rows != (ra[0] + rb[0], *ra[1:]):
                return None
            t = "transpose+" if self.transpose and a.transposable(k) else ""
            entries += [Entry(a.names[k], (name,), t + "split", (0, ra[0])),
                        Entry(b.names[k], (name,), t + "split", (ra[0], ra[0] + rb[0]))]
        return entries

    def _tagged(self, m: Module, i: int):
        """A module whose tensors come in tagged sets (an LSTM's ``weight_ih_l0``/``bias_ih_l0``
        and ``weight_hh_l0``/``bias_hh_l0``) onto as many consecutive netc layers (a cell
        written out as two linear layers), one set each, in whichever order shapes allow."""
        sets: dict[str, dict[str, str]] = {}
        for name in m.own:
            hit = _TAGGED.match(name.rsplit(".", 1)[-1])
            if not hit:
                return
            sets.setdefault(hit.group(2), {})[hit.group(1)] = name
        if not 2 <= len(sets) <= 4 or i + len(sets) > len(self.units):
            return
        tags = sorted(sets, key=natural_key) if not self.ordered else list(sets)
        for order in itertools.permutations(tags):
            entries = []
            for j, tag in enumerate(order):
                u = self.units[i + j]
                if sorted(ROLES.get(x) or "" for x in u.leaves) != sorted(sets[tag]):
                    break
                for k, leaf in enumerate(u.leaves):
                    conv = self._shape_fit(sets[tag][ROLES[leaf]], u, k)
                    if conv is None:
                        break
                    entries.append(Entry(u.names[k], (sets[tag][ROLES[leaf]],), conv))
                else:
                    continue
                break
            else:
                yield entries, len(sets)

    # -- separate q, k, v -> one in-projection ------------------------------------------------
    def _qkv(self, order: list[Module], i: int) -> tuple[Module, Module, Module] | None:
        if i >= len(self.units) or "in_proj_weight" not in self.units[i].leaves:
            return None
        leaves = [c for c in order if not c.children and c.own]
        roles = {}
        for c in leaves:
            hit = _QKV.match(c.local.lower())
            if hit:
                roles.setdefault(hit.group(1)[0], []).append(c)
        if all(len(roles.get(r, ())) == 1 for r in "qkv"):
            return roles["q"][0], roles["k"][0], roles["v"][0]
        if self.ordered and len(order) >= 3 and all(c in leaves for c in order[:3]) and not roles:
            return order[0], order[1], order[2]
        return None

    def _pack(self, triple, i: int) -> list[Entry] | None:
        u = self.units[i]
        parts = [self._pair(c.own, Unit("linear", [], ["weight", "bias"][:len(u.leaves)], [])) for c in triple]
        if any(p is None for p in parts):
            return None
        entries = []
        for k, leaf in enumerate(u.leaves):
            role = ROLES[leaf]
            names = tuple(next(n for n, j in p if j == ["weight", "bias"].index(role)) for p in parts)
            shapes = [self.shapes[n] for n in names]
            t = self.transpose and u.transposable(k)
            shapes = [s[::-1] for s in shapes] if t else shapes
            if any(s[1:] != u.shapes[k][1:] for s in shapes) or sum(s[0] for s in shapes) != u.shapes[k][0]:
                return None
            entries.append(Entry(u.names[k], names, "transpose+concat" if t else "concat"))
        return entries


def map_by_structure(graph: Graph, shapes: dict[str, tuple], ordered: bool) -> tuple[list[Entry], bool]:
    """The entries that make ``graph``'s weights from checkpoint tensors of these shapes (name
    -> shape, in the checkpoint's order when ``ordered``), and whether matrices were
    transposed. Raises ``WeightError`` naming each weight left over, or each square matrix
    whose orientation nothing decides."""
    units = netc_units(graph)
    root = module_tree(list(shapes), ordered)
    searches = []
    for transpose in (False, True):
        s = Search(units, shapes, root, ordered, transpose)
        entries = s.run()
        if entries is not None:
            _orientation_decided(units, entries, transpose)
            return entries, transpose
        searches.append(s)
    best = max(searches, key=lambda s: s.best[0])
    left_units, left_names = best.leftover()
    problems = [(f"the checkpoint does not fit {graph.name}: laid out in order, {len(units) - len(left_units)} "
                f"of its {len(units)} modules found their tensors, and these did not fit:")]
    problems += [f"netc weight `{name}` {_fmt(units[i].shapes[k])}: no checkpoint tensor fits"
                 for i in left_units for k, name in enumerate(units[i].names)]
    problems += [f"checkpoint tensor `{n}` {_fmt(shapes[n])}: fits no netc weight" for n in left_names]
    if best.gave_up:
        problems.append(f"(the search stopped after {MAX_STEPS:,} steps)")
    raise WeightError(problems)


def _orientation_decided(units: list[Unit], entries: list[Entry], transpose: bool) -> None:
    """Laid out without transposing, a checkpoint whose matmul weights are all square could as
    well be [in, out] (``Conv1D``): refuse rather than guess."""
    if transpose:
        return
    by_name = {n: (u, k) for u in units for k, n in enumerate(u.names)}
    mats = [(e.netc, by_name[e.netc]) for e in entries if e.netc in by_name and by_name[e.netc][0].transposable(by_name[e.netc][1])]
    if mats and all(u.shapes[k][0] == u.shapes[k][1] for _, (u, k) in mats):
        raise WeightError(["every matrix of the checkpoint is square, so nothing tells whether it stores [out, in] "
                           "(torch.nn.Linear) or [in, out] (Conv1D); pass a mapping file: "
                           + ", ".join(f"`{n}`" for n, _ in mats)])


def _fmt(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"
