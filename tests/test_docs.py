"""The generated op reference must match the catalogue."""

from pathlib import Path

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
