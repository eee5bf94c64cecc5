"""The generated docs must match their sources: the op reference (docs/ops.md) the catalogue,
the pass table of docs/optimiser.md the pass registry."""

from pathlib import Path

import pytest
from netc.compiler.passes import all_passes, passdoc
from netc.specs import opsdoc
from netc.specs.catalogue import all_ops

ROOT = Path(__file__).resolve().parents[1]


def test_ops_md_is_current():
    committed = (ROOT / "docs" / "ops.md").read_text()
    assert committed == opsdoc.render(), "docs/ops.md is stale: run `python -m netc.specs.opsdoc > docs/ops.md`"


def test_every_op_is_documented_with_a_signature_and_a_doc():
    text = opsdoc.render()
    for name, op in all_ops().items():
        assert f"| `{name}` |" in text
        assert op.doc(), f"{name} has no docstring"
        assert op.signature, f"{name} has no signature"


def test_optimiser_md_pass_table_is_current():
    committed = (ROOT / "docs" / "optimiser.md").read_text()
    assert committed == passdoc.splice(committed), (
        "the pass table of docs/optimiser.md is stale: run `python -m netc.compiler.passes.passdoc docs/optimiser.md`")


def test_pass_table_lists_every_pass_in_order():
    rows = passdoc.render().splitlines()[2:]
    assert [r.split("`")[1] for r in rows] == [p.name for p in all_passes()]
    for row, p in zip(rows, all_passes()):
        assert row == f"| `{p.name}` | -O{p.level} | {p.purpose} |"


def test_pass_table_splice_replaces_only_the_table():
    doc = f"before\n{passdoc.BEGIN}\n| old | table |\n{passdoc.END}\nafter\n"
    assert passdoc.splice(doc) == f"before\n{passdoc.BEGIN}\n\n{passdoc.render()}\n{passdoc.END}\nafter\n"
    with pytest.raises(ValueError, match="no pass table markers"):
        passdoc.splice("no markers here")
