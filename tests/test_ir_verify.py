"""The IR verifier (``netc.compiler.verify``): every invariant it guards, broken one at a time
on a small compiled graph, raises ``IRError`` naming the graph, the node and the invariant;
``Graph``'s own guards raise it too; a pass that breaks the graph is named; and all of it
holds under ``python -O``, where ``assert`` is gone.

Every example verifies after every pass at -O1 and -O2 (here at full size; made small in
``test_passes_cleanup.py::test_pipeline_verifies_after_every_pass``), and the suite's conftest
sets ``NETC_VERIFY_IR=1``, so every optimisation any test runs is verified after each pass.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from netc.compiler import records
from netc.compiler.ir import Graph
from netc.compiler.passes import Pass, PassResult, all_passes, optimize
from netc.compiler.verify import IRError, verify
from netc.specs.catalogue import Param, get

import netc

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
SPEC = """
block Res(x: [N, F]) {
    return x + (x -> linear(F) -> relu)
}
model M(x: float[N, 8]) -> float[N, 4] {
    return x -> Res -> linear(4)
}
"""


@pytest.fixture(scope="module")
def prog(tmp_path_factory):
    path = tmp_path_factory.mktemp("verify") / "small.net"
    path.write_text(SPEC)
    return netc.compile_file(path)


@pytest.fixture
def g(prog) -> Graph:
    return prog.graph("M").copy()  # nodes are immutable: breaking a copy leaves the program's graph


def change(g: Graph, nid: str, **fields) -> None:
    g.replace(records.replace(g.node(nid), **fields))


def broken(g: Graph, *words: str) -> str:
    with pytest.raises(IRError) as e:
        verify(g)
    text = str(e.value)
    assert "graph `M`" in text, text
    for w in words:
        assert w in text, text
    return text


def test_compiled_graphs_verify(prog):
    verify(prog.graph("M"))
    lstm = netc.compile_file(EXAMPLES / "char_rnn.net").graph("CharLSTM")
    verify(lstm)
    verify(lstm.copy())


def test_dangling_ref(g):
    with pytest.raises(IRError, match="`res.relu` reads `ghost`, which is not in the graph"):
        change(g, "res.relu", inputs=(("ghost", 0),))  # Graph.replace refuses it
    g.g.add_edge("ghost", "res.relu", key=1, port=0)  # made behind the verbs' back
    g.g.nodes["res.relu"]["node"] = g._nodes["res.relu"] = records.replace(g.node("res.relu"), inputs=(("res.linear", 0), ("ghost", 0)))
    broken(g, "`ghost`", "dangling ref", "node `res.relu`")


def test_port_out_of_range(g):
    change(g, "res.relu", inputs=(("res.linear", 1),))
    broken(g, "node `res.relu`", "port 1 of `res.linear`", "1 output(s)")


def test_wrong_recorded_type(g):
    n = g.node("res.relu")
    change(g, "res.relu", types=(n.type.with_shape((n.type.shape[0], 9)),))
    broken(g, "node `res.relu`", "float[N, 9]", "shape rule", "float[N, 8]")


def test_rewrite_that_changes_attrs_but_not_types(g):
    """What a wrong rewrite looks like: the attrs say 5 outputs, the recorded type says 4."""
    n = g.node("linear")
    change(g, "linear", attrs=n.attrs.model_copy(update={"out": 5}))
    broken(g, "node `linear`", "float[N, 4]", "float[N, 5]")


def test_rejected_by_the_shape_rule(g):
    change(g, "linear", inputs=(("x", 0), ("x", 0), ("x", 0)))
    broken(g, "node `linear`", "reads 3 tensor(s); linear takes 1")
    conv = get("conv2d")
    change(g, "linear", inputs=(("x", 0),), op="conv2d", attrs=conv.Attrs(out=4, kernel=3))
    broken(g, "node `linear`", "conv2d's shape rule rejects its inputs (float[N, 8])")


def test_wrong_weights_and_macs(g):
    n = g.node("linear")
    change(g, "linear", params={**n.params, "bias": Param((5,))})
    broken(g, "node `linear`", "weights", "bias: [5]")
    change(g, "linear", params=n.params, macs=n.macs + 1)
    broken(g, "node `linear`", "MAC count")


def test_cycle(g):
    change(g, "res.linear", inputs=(("res.add", 0),))
    broken(g, "cycle", "res.add", "res.linear")


def relink(g, order: list[str]) -> None:
    """Lay the graph's node order (a doubly linked list) out as ``order``, bypassing the verbs."""
    g._next, g._prev = {None: None}, {None: None}
    prev = None
    for nid in order:
        g._next[prev], g._prev[nid] = nid, prev
        prev = nid
    g._next[prev], g._prev[None] = None, prev
    g._next.setdefault(prev, None)


def test_node_out_of_order(g):
    order = g.ids()
    i, j = order.index("res.linear"), order.index("res.relu")
    order[i], order[j] = order[j], order[i]
    relink(g, order)
    broken(g, "node `res.relu`", "comes before `res.linear`", "not topological")


def test_order_holds_exactly_the_nodes(prog):
    g = prog.graph("M").copy()
    relink(g, g.ids() + ["gone"])
    broken(g, "node `gone`", "not in the graph")
    g = prog.graph("M").copy()
    relink(g, [n for n in g.ids() if n != "linear"])
    broken(g, "node `linear`", "not in the node order")
    g = prog.graph("M").copy()
    g._prev["linear"] = None  # a backward link that skips nodes
    broken(g, "forward and backward links disagree")


def test_node_stored_under_another_id(g):
    g.g.nodes["res.relu"]["node"] = g._nodes["res.relu"] = records.replace(g.node("res.relu"), id="res.add")
    broken(g, "node `res.add`", "stored under the id `res.relu`")


def test_node_index_disagrees_with_the_graph(g):
    g._nodes["res.relu"] = g.node("linear")  # the index changed, the graph not
    broken(g, "node `res.relu`", "node index holds another node")


def test_node_changed_without_replace(g):
    """Swapping the stored node leaves the MultiDiGraph's edges behind."""
    g.g.nodes["linear"]["node"] = g._nodes["linear"] = records.replace(g.node("linear"), inputs=(("res.relu", 0),))
    broken(g, "node `linear`", "edges", "Graph.replace")


def test_graph_inputs_are_input_nodes(g):
    g.inputs.append("res.relu")
    broken(g, "node `res.relu`", "not an input node")


def test_input_node_missing_from_inputs(g):
    g.inputs.clear()
    broken(g, "inputs")


def test_unknown_op(g):
    change(g, "res.relu", op="frobnicate")
    broken(g, "node `res.relu`", "`frobnicate` is not in the catalogue")


def test_attrs_of_another_op(g):
    change(g, "res.relu", attrs=g.node("linear").attrs)
    broken(g, "node `res.relu`", "not relu's attributes")


def test_outputs_resolve(g):
    g.outputs = [("y", ("nowhere", 0))]
    broken(g, "result `y`", "`nowhere`")
    g.outputs = [(None, ("linear", 3))]
    broken(g, "port 3 of `linear`")


def test_block_instances_resolve(prog):
    for edit, words in [({"outputs": (("res.gone", 0),)}, ["result of block instance `res`", "`res.gone`"]),
                        ({"inputs": (("x", ("x", 2)),)}, ["input `x` of block instance `res`", "port 2"]),
                        ({"parent": "nowhere"}, ["block instance `res`", "parent `nowhere`"])]:
        g = prog.graph("M").copy()
        g.blocks["res"] = records.replace(g.blocks["res"], **edit)
        broken(g, *words)
    g = prog.graph("M").copy()
    g.replace(records.replace(g.node("res.relu"), block="gone"))
    broken(g, "node `res.relu`", "block instance `gone`")


def test_scan_cells_are_verified():
    g = netc.compile_file(EXAMPLES / "char_rnn.net").graph("CharLSTM").copy()
    scan = g.node("scan")
    cell = scan.attrs.cell
    bad = cell.graph.copy()
    victim = next(n for n in bad.nodes() if n.op == "sigmoid")
    bad.replace(records.replace(victim, types=(victim.type.with_shape((1, 2, 3)),)))
    g.replace(records.replace(scan, attrs=scan.attrs.model_copy(
        update={"cell": records.replace(cell, graph=bad)})))
    with pytest.raises(IRError) as e:
        verify(g)
    text = str(e.value)
    assert f"graph `{bad.name}` (the cell of `scan` in graph `CharLSTM`)" in text and f"`{victim.id}`" in text, text
    verify(netc.compile_file(EXAMPLES / "char_rnn.net").graph("CharLSTM"))  # the original is untouched


def test_graph_verbs_raise_irerror(g):
    with pytest.raises(IRError, match="duplicate node id `res.relu`"):
        g.add(g.node("res.relu"))
    with pytest.raises(IRError, match="cannot remove `res.linear`, which still has users"):
        g.remove("res.linear")
    with pytest.raises(IRError, match="cannot remove `linear`, which is a result of the model"):
        g.remove("linear")
    with pytest.raises(IRError, match="cannot replace `nope`"):
        g.replace(records.replace(g.node("linear"), id="nope"))


def test_optimize_names_the_pass_that_broke_the_graph(prog, monkeypatch):
    def breaks(ctx):
        n = ctx.graph.node("res.relu")
        ctx.graph.replace(records.replace(n, types=(n.type.with_shape((7, 7)),)))
        return PassResult(changed=True)

    passes = all_passes()  # registered before the pipeline is swapped for one that starts with a bad pass
    monkeypatch.setattr("netc.compiler.passes.PIPELINE", [Pass("bad_pass", 1, "breaks the IR", breaks), *passes])
    with pytest.raises(IRError, match=r"graph `M` after pass bad_pass, node `res\.relu`: its recorded type"):
        optimize(prog.graph("M"), 1, check=True)
    monkeypatch.setenv("NETC_VERIFY_IR", "1")  # what the suite sets: the same without check=True
    with pytest.raises(IRError, match="after pass bad_pass"):
        optimize(prog.graph("M"), 1)
    monkeypatch.setenv("NETC_VERIFY_IR", "0")
    optimize(prog.graph("M"), 1)  # unchecked, the broken graph goes through
    verify(prog.graph("M"))


def test_optimize_verifies_its_input(g):
    change(g, "res.relu", inputs=(("res.linear", 4),))
    with pytest.raises(IRError, match="graph `M` before the passes, node `res.relu`"):
        optimize(g, 0, check=True)


@pytest.mark.parametrize("spec", sorted(p.name for p in EXAMPLES.glob("*.net")))
def test_every_example_verifies_after_every_pass(spec):
    """At their full sizes (test_passes_cleanup.py runs them made small), -O1 and -O2."""
    prog = netc.compile_file(EXAMPLES / spec)
    for model in prog.models:
        if model not in prog.pairs:
            for level in (1, 2):
                verify(optimize(prog.graph(model), level, check=True).graph, f"at -O{level}")


def test_the_suite_verifies_after_every_pass():
    assert os.environ.get("NETC_VERIFY_IR") == "1"


UNDER_O = """
import sys
import netc
from netc.compiler import records
from netc.compiler.verify import IRError, verify
assert not __debug__, "run me with python -O"
g = netc.compile_file(sys.argv[1]).graph("LeNet").copy()
caught = []
def expect(f):
    try:
        f()
    except IRError as e:
        caught.append(str(e))
    else:
        raise SystemExit("no IRError")
n = g.node("relu")
expect(lambda: g.replace(records.replace(n, inputs=(("ghost", 0),))))
g.g.nodes["relu"]["node"] = g._nodes["relu"] = records.replace(n, op="frobnicate")  # behind the verbs' back
expect(lambda: verify(g))
g = netc.compile_file(sys.argv[1]).graph("LeNet").copy()
expect(lambda: g.add(g.node("relu")))
expect(lambda: g.remove("conv2d"))
print(len(caught))
"""


def test_raises_under_python_O():
    res = subprocess.run([sys.executable, "-O", "-c", UNDER_O, str(EXAMPLES / "lenet.net")], capture_output=True,
                         text=True, timeout=120, check=False, cwd=ROOT)
    assert res.returncode == 0, res.stderr + res.stdout
    assert res.stdout.split() == ["4"], res.stdout
