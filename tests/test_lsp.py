"""``netc lsp`` driven over stdio by a real LSP client (pygls's LanguageClient): one server
process for the module."""

from __future__ import annotations

import re

import pytest
from lsp_client import ROOT, Client
from lsprotocol import types as lsp
from netc.compiler.pipeline import compile_spec
from netc.compiler.source import SpecError
from netc.compiler.summary import fmt_count

import netc

LENET = ROOT / "examples" / "lenet.net"
RESNET = ROOT / "examples" / "resnet18.net"
STD_RESNET = ROOT / "specs" / "std" / "resnet.net"


@pytest.fixture(scope="module")
def client():
    c = Client(init_options={"inlayHints": True})
    yield c
    assert c.stop() == 0  # shut down cleanly, not killed


def _pos(text: str, needle: str, nth: int = 0, into: int = 0) -> tuple[int, int]:
    """The (line, character) from 0 of the ``nth`` ``needle`` in ``text``, ``into`` characters in."""
    at = -1
    for _ in range(nth + 1):
        at = text.index(needle, at + 1)
    at += into
    line = text.count("\n", 0, at)
    return line, at - (text.rfind("\n", 0, at) + 1)


def test_a_diagnostic_at_its_range_then_none_once_fixed(client, tmp_path):
    good = LENET.read_text()
    bad = good.replace("features -> flatten -> linear(128)", "features -> linear(128)")
    spec = tmp_path / "bad.net"
    spec.write_text(bad)
    with pytest.raises(SpecError) as e:  # what `netc check` reports
        netc.compile_file(str(spec))
    want = e.value.diagnostics[0]
    uri = client.open(spec)
    got = client.diagnostics(uri)
    assert len(got) == len(e.value.diagnostics) == 1
    d = got[0]
    assert d.severity == lsp.DiagnosticSeverity.Error and d.source == "netc"
    assert d.message.startswith(want.message)
    if want.hint:
        assert f"hint: {want.hint}" in d.message
    line, char = _pos(bad, "linear(128)")
    assert (d.range.start.line, d.range.start.character) == (line, char) == (want.span.line - 1, want.span.column - 1)
    assert (d.range.end.line, d.range.end.character) == (line, char + len("linear(128)"))
    # the notes are related locations, at their own places
    notes = [(m, s) for m, s in want.notes if s is not None]
    assert notes and len(d.related_information) == len(notes)
    for info, (message, span) in zip(d.related_information, notes):
        assert info.message == message
        assert info.location.uri == spec.resolve().as_uri()
        assert info.location.range.start.line == span.line - 1
    client.change(uri, good)  # fixed, not saved
    assert client.diagnostics(uri) == []
    client.close(uri)


def test_an_error_in_an_imported_file_is_shown_at_its_import(client, tmp_path):
    (tmp_path / "blocks.net").write_text("block Head(x: [N, F]) {\n    return x -> linaer(10)\n}\n")
    text = 'import "blocks.net"\n\nmodel M(x: float[N, 4]) -> float[N, 10] {\n    return x -> Head\n}\n'
    uri = client.open(tmp_path / "main.net", text)  # the editor's buffer: not on disk
    (d,) = client.diagnostics(uri)
    assert (d.range.start.line, d.range.start.character, d.range.end.character) == (0, 0, len(text.splitlines()[0]))
    first = d.message.split("\n")[0]
    assert f"blocks.net:2:{len('    return x -> ') + 1}: " in first and "`linaer`" in first
    where = d.related_information[0].location
    assert where.uri == (tmp_path / "blocks.net").resolve().as_uri()
    assert (where.range.start.line, where.range.start.character) == (1, len("    return x -> "))


def test_positions_count_utf16_code_units(client, tmp_path):
    text = 'import "😀é.net"\n'  # 😀 is two UTF-16 code units
    uri = client.open(tmp_path / "emoji.net", text)
    (d,) = client.diagnostics(uri)
    assert "no such file" in d.message
    line = text.splitlines()[0]
    assert d.range.end == lsp.Position(line=0, character=len(line.encode("utf-16-le")) // 2) != len(line)


def test_hover_over_a_layer_gives_its_type_params_and_doc(client):
    text = LENET.read_text()
    uri = client.open(LENET)
    assert client.diagnostics(uri) == []
    line, char = _pos(text, "linear(128)", into=3)
    h = client.hover(uri, line, char)
    assert h is not None
    value = h.contents.value
    prog = netc.compile_file(str(LENET))
    row = {r.name: r for r in prog.summary("LeNet").rows}["linear"]
    assert "`float[N, 128]`" in value and str(prog.graph("LeNet").node("linear").type) == "float[N, 128]"
    assert f"params {row.params:,}" in value and row.params > 0
    assert f"MACs {fmt_count(row.macs)}" in value
    assert "linear(out, bias=true)" in value  # the catalogue's signature ...
    assert "Affine map" in value  # ... and doc
    assert (h.range.start.line, h.range.start.character) == (line, char - 3)
    # a keyword argument: the op's attribute
    value = client.hover(uri, *_pos(text, "padding=1", into=2)).contents.value
    assert "attribute of `conv2d`" in value and "padding: " in value
    # a name: the tensor it holds
    line, char = _pos(text, "features -> flatten")
    assert "float[N, 64, 7, 7]" in client.hover(uri, line, char + 2).contents.value


def test_definition_and_references_of_a_std_block(client):
    text = RESNET.read_text()
    uri = client.open(RESNET)
    client.diagnostics(uri)
    line, char = _pos(text, "Basic(128, stride=2)", into=2)
    loc = client.definition(uri, line, char)
    std = STD_RESNET.read_text()
    want_line, want_char = _pos(std, "block Basic", into=len("block "))
    assert loc.uri == STD_RESNET.resolve().as_uri()
    assert (loc.range.start.line, loc.range.start.character) == (want_line, want_char)
    assert loc.range.end.character == want_char + len("Basic")
    refs = client.references(uri, line, char)
    uses = [(i, m.start()) for i, ln in enumerate(text.splitlines()) for m in re.finditer(r"\bBasic\(", ln)]
    in_spec = sorted((r.range.start.line, r.range.start.character) for r in refs if r.uri == uri)
    assert in_spec == sorted(uses) and len(uses) == 7
    assert next(r for r in refs if r.uri == loc.uri).range == loc.range  # the declaration, first
    # a local name: go to its `let`
    gpt2 = ROOT / "examples" / "gpt2.net"
    g = gpt2.read_text()
    guri = client.open(gpt2)
    client.diagnostics(guri)
    loc = client.definition(guri, *_pos(g, "unembed(wte)", into=len("unembed(")))
    assert loc.uri == guri and (loc.range.start.line, loc.range.start.character) == _pos(g, "wte = embedding")
    refs = client.references(guri, *_pos(g, "-> wte", into=4))
    assert sorted((r.range.start.line, r.range.start.character) for r in refs) == sorted(
        _pos(g, w) for w in ("wte = embedding", "wte) +", "wte)\n"))
    # an import: the file
    loc = client.definition(uri, *_pos(text, '"std/resnet.net"', into=3))
    assert loc.uri == STD_RESNET.resolve().as_uri()


def test_completion_of_ops_blocks_and_keywords(client, tmp_path):
    text = RESNET.read_text()
    spec = tmp_path / "typing.net"
    uri = client.open(spec, text)
    client.diagnostics(uri)
    typed = text.replace("-> global_avgpool", "-> con")
    client.change(uri, typed)
    line, char = _pos(typed, "-> con", into=len("-> con"))
    items = {i.label: i for i in client.completion(uri, line, char).items}
    assert items["conv2d"].detail.startswith("conv2d(out, kernel, ")
    assert "concat" in items and "ConvBN" in items  # an op and a block of std/ that the spec imports
    assert items["ConvBN"].detail == "ConvBN(out: int, k: int = 3, stride: int = 1)"
    assert all(label.lower().startswith("con") for label in items)
    typed = text.replace("-> global_avgpool", "-> conv2d(64, st")
    client.change(uri, typed)
    items = {i.label for i in client.completion(uri, *_pos(typed, "(64, st", into=len("(64, st"))).items}
    assert "stride=" in items and "out=" not in items  # keywords that begin with what is typed
    typed = text.replace("-> global_avgpool", "-> ConvBN(64, ")
    client.change(uri, typed)
    items = {i.label for i in client.completion(uri, *_pos(typed, "ConvBN(64, ", into=len("ConvBN(64, "))).items}
    assert {"out=", "k=", "stride="} <= items and "x=" not in items  # a block's parameters, not its tensor
    client.close(uri)


def test_document_symbols(client):
    spec = ROOT / "examples" / "autoencoder.net"
    uri = client.open(spec)
    client.diagnostics(uri)
    syms = {s.name: s for s in client.symbols(uri)}
    assert syms["Encoder"].kind == lsp.SymbolKind.Class and syms["AutoEncoder"].kind == lsp.SymbolKind.Struct
    text = spec.read_text()
    assert syms["AutoEncoder"].selection_range.start == lsp.Position(*_pos(text, "AutoEncoder {"))
    spec = ROOT / "examples" / "char_rnn.net"
    uri = client.open(spec)
    client.diagnostics(uri)
    syms = {s.name: s for s in client.symbols(uri)}
    assert syms["CHARS"].kind == lsp.SymbolKind.Constant and syms["Elman"].detail == "cell"
    assert set(syms) == set(re.findall(r"^(?:const|cell|model|block|pair) (\w+)", spec.read_text(), re.MULTILINE))


def test_inlay_hints_give_the_shape_after_each_stage_and_switch_off(client):
    text = LENET.read_text()
    uri = client.open(LENET)
    client.diagnostics(uri)
    hints = client.inlay_hints(uri, len(text.splitlines()))
    graph = netc.compile_file(str(LENET)).graph("LeNet")
    stages = [n for n in graph.nodes() if n.op != "input"]
    assert [h.label for h in hints] == [f": {n.type}" for n in stages]
    first = stages[0].span
    assert hints[0].position == lsp.Position(line=first.end_line - 1, character=first.end_column - 1)
    client.configure({"netc": {"inlayHints": False}})
    assert client.inlay_hints(uri, len(text.splitlines())) == []
    client.configure({"netc": {"inlayHints": True}})
    assert len(client.inlay_hints(uri, len(text.splitlines()))) == len(stages)


def test_formatting_goes_through_netc_fmt(client, tmp_path):
    """The editor's unsaved, messy text comes back as `netc fmt` lays it out; a formatted
    text needs no edit."""
    from netc.fmt import format_source

    messy = LENET.read_text().replace(" -> ", "->").replace(", ", ",").replace("    ", "  ")
    want = format_source(messy, str(LENET))
    assert want != messy and want == format_source(want, str(LENET))
    uri = client.open(tmp_path / "lenet.net", messy)
    client.diagnostics(uri)
    edits = client.formatting(uri)
    assert len(edits) == 1 and edits[0].new_text == want
    client.change(uri, want)
    client.diagnostics(uri)
    assert client.formatting(uri) == []


def test_half_written_text_never_kills_the_server(client, tmp_path):
    spec = ROOT / "examples" / "gpt2.net"
    text = spec.read_text()
    uri = client.open(tmp_path / "gpt2.net", text)
    client.diagnostics(uri)
    for cut in range(0, len(text), 23):
        client.change(uri, text[:cut])  # typed faster than the debounce
    for cut in list(range(7, len(text), 71)) + [text.index("->") + 1, text.index("{") + 1]:
        client.change(uri, text[:cut])  # each prefix checked, with what `netc check` says of it
        try:
            compile_spec(str(tmp_path / "gpt2.net"), text=text[:cut])
            want = []
        except SpecError as e:
            want = [d.message for d in e.diagnostics]
        assert [d.message.split("\n")[0] for d in client.diagnostics(uri)] == want
    client.change(uri, text[: text.index("model GPT2(") + 14] + "\x00 ) -> [")
    bad = client.diagnostics(uri)
    assert bad and all(d.range.start.line >= 0 for d in bad)
    for line in range(0, 16, 3):  # requests on broken text answer
        client.hover(uri, line, 4)
        client.completion(uri, line, 4)
        client.definition(uri, line, 4)
        client.symbols(uri)
    client.change(uri, text)
    assert client.diagnostics(uri) == []
    assert client.process.returncode is None
    assert not [m for m in client.logs if "internal error" in m]
    h = client.hover(uri, *_pos(text, "-> layernorm", into=5))
    assert "float[N, T, 768]" in h.contents.value


def test_a_document_closed_while_it_is_checked(client, tmp_path):
    """Closed while its check runs (a file never saved: no copy on disk): the server drops
    the result without an error; before, publishing read the closed document back from disk
    (FileNotFoundError, logged as an internal error)."""
    text = (ROOT / "examples" / "gpt2.net").read_text().replace("-> layernorm ->", "-> layrnorm ->")
    before = len(client.logs)
    for i in range(12):
        uri = client.open(tmp_path / f"unsaved_{i}.net", text)  # checked at once, for ~25 ms
        client.pump(0.004 * i)
        client.close(uri)
    uri = client.open(tmp_path / "last.net", text)
    assert [d.message.split("\n")[0] for d in client.diagnostics(uri)] == ["unknown op or block `layrnorm`"]
    client.pump(0.2)  # any check still running ends
    assert not [m for m in client.logs[before:] if "internal error" in m]
    assert client.process.returncode is None
    client.close(uri)
