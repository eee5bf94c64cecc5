"""``prog.summary(...)`` shows as the CLI's table: ``print`` gives ``netc summary``'s text, the
repr is one short line, and notebooks get an HTML table with the same rows and totals."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

from cli_helpers import run_cli
from netc.compiler.summary import fmt_count

import netc

ROOT = Path(__file__).resolve().parents[1]


class Cells(HTMLParser):
    """The text of each ``<tr>``'s cells, per section (thead, tbody, tfoot)."""

    def __init__(self):
        super().__init__()
        self.rows: dict[str, list[list[str]]] = {"thead": [], "tbody": [], "tfoot": []}
        self.section, self.cell = None, None

    def handle_starttag(self, tag, attrs):
        if tag in self.rows:
            self.section = tag
        elif tag == "tr":
            self.rows[self.section].append([])
        elif tag in ("td", "th"):
            self.cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.rows[self.section][-1].append(self.cell)
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell += data


def test_str_is_the_cli_table(monkeypatch):
    s = netc.compile_file(str(ROOT / "examples/resnet18.net")).summary("ResNet18", depth=1)
    code, out, _ = run_cli("summary", "examples/resnet18.net", "--depth", "1", cwd=ROOT, monkeypatch=monkeypatch)
    assert code == 0
    assert str(s) + "\n" == out


def test_repr_is_one_short_line():
    s = netc.compile_file(str(ROOT / "examples/lenet.net")).summary("LeNet")
    assert repr(s) == "<Summary LeNet: 11 rows, 421,642 params, MACs 4,241,152·N>"


def test_html_table_has_the_rows_and_totals():
    s = netc.compile_file(str(ROOT / "examples/unet.net")).summary("UNet", depth=1)
    parser = Cells()
    parser.feed(s._repr_html_())
    assert parser.rows["thead"] == [["Layer (scope)", "Op", "Output shape", "Params", "MACs"]]
    body = parser.rows["tbody"]
    assert len(body) == len(s.rows)
    for cells, row in zip(body, s.rows):
        assert cells[:3] == [row.name, row.op, row.shape]
        assert cells[3] == (f"{row.params:,}" if row.params else "-")
    foot = {label: value for label, value in parser.rows["tfoot"]}
    assert foot["Total params"] == f"{s.params:,}"
    assert foot["Total MACs"] == fmt_count(s.macs) and "(H // 16)" in foot["Total MACs"]
    assert foot["Inputs"] == "image: float[N, 3, H, W]"
