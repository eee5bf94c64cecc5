"""use_channels_last decides with a cost model: the decisions on given shapes and tables (per
thread count), what --report says, the run-time batch and thread-count checks it emits, and
that the module computes the -O0 numbers on either side of them; a table netc cannot read is
a clear error. Cheap: small specs, fixed tables (tests/fixtures, and tables made of them with
a column per thread count), one process."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from netc.compiler.passes import _layout_costs as costs
from netc.compiler.passes import format_report
from netc.specs.catalogue import get

import netc
from netc import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures"

SPEC = """
model Net(x: float[N, 3, 16, 16]) -> float[N, 4] {
    return x -> conv2d(8, 3, padding=1) -> batchnorm -> relu
             -> conv2d(8, 4, stride=2, padding=1) -> leaky_relu(0.2) -> global_avgpool -> linear(4)
}
model Fixed(x: float[2, 3, 16, 16]) -> float[2, 8, 16, 16] {
    return x -> conv2d(8, 3, padding=1) -> relu
}
model Sized(x: float[N, 3, H, W]) -> float[N, 8, H, W] {
    return x -> conv2d(8, 3, padding=1) -> relu
}
"""


@pytest.fixture
def table(monkeypatch):
    def use(name: str | None):
        if name is None:
            monkeypatch.delenv("NETC_LAYOUT_COSTS")  # the checked-in, measured table
        else:
            monkeypatch.setenv("NETC_LAYOUT_COSTS", str(FIXTURES / f"layout_costs_{name}.json"))
    return use


def compiled(tmp_path, text: str = SPEC) -> netc.Program:
    spec = tmp_path / "m.net"
    spec.write_text(text)
    return netc.compile_file(spec)  # a fresh program: optimised graphs are cached per program


def layout_lines(prog: netc.Program, model: str) -> list[str]:
    report = format_report(prog.optimized(2).reports[model])
    block = report.split("use_channels_last")[1].split("eliminate_dead_code")[0]
    return block.splitlines()


def conversions(prog: netc.Program, model: str) -> list:
    return [n.attrs for n in prog.optimized(2).graph(model).nodes() if n.op == "memory_format"]


def test_classify_reads_the_attributes_the_pass_sees():
    assert costs.classify("conv2d", 4, 2, 1, 256, 4) == "conv2d/large/s2/wide/tiny"
    assert costs.classify("conv2d", 1, 1, 1, 64, 56) == "conv2d/pointwise/s1/narrow/big"
    assert costs.classify("conv2d", 3, 2, 96, 96, 16) == "conv2d/depthwise/s2/narrow/mid"
    assert costs.classify("conv2d", 7, 2, 1, 3, 112) == "conv2d/large/s2/stem/big"
    assert costs.classify("conv_transpose2d", 2, 2, 1, 512, 28) == "conv_transpose2d/small/s2/wide/mid"
    assert costs.classify("maxpool2d", 3, 2, 1, 64, 56) == "maxpool2d/k3/s2/narrow/big"
    assert costs.classify("avgpool2d", 2, 2, 1, 512, 7) == "avgpool2d/k2/s2/wide/tiny"
    assert costs.classify("maxpool2d", 5, 1, 1, 3, 16) == "maxpool2d/large/s1/narrow/mid"


def test_the_checked_in_table_covers_every_class_it_names():
    data = costs._read(costs.TABLE)
    assert data["format"] == costs.FORMAT and set(data["threads"])
    for entry in data["threads"].values():
        assert entry["measured"] and entry["clock"] in ("cpu", "wall")
        assert set(entry["classes"]) == set(data["shapes"])
        for per_batch in entry["classes"].values():
            assert set(per_batch) == set(entry["convert_ns_per_element"])
            assert all(v["nchw"] > 0 and v["nhwc"] > 0 for v in per_batch.values())


def test_the_threshold_is_interpolated_between_measured_batches():
    ratio = {1: 1.5, 2: 1.2, 16: 0.8, 64: 0.8}
    start = costs.threshold(ratio.__getitem__, list(ratio))
    assert 2 < start < 16  # 1.2 -> 0.8 over log2 2..16: 0.99 is crossed at 2 ** (1 + 3 * 0.525) = 5.96
    assert start == 6
    assert costs.threshold({1: 0.5, 2: 0.5}.__getitem__, [1, 2]) == 1
    assert costs.threshold({1: 0.5, 2: 1.5}.__getitem__, [1, 2]) is None  # loses at the largest


def test_always_faster_applies_at_every_batch(tmp_path, table):
    table("always")
    prog = compiled(tmp_path)
    assert [a.format for a in conversions(prog, "Net")] == ["channels_last"]
    assert conversions(prog, "Net")[0].min_batch == 1
    lines = layout_lines(prog, "Net")
    assert any("decided" in s and "applied at every batch" in s and "N = 1: 0.50" in s for s in lines), lines
    assert any("[conv2d/large/s2/stem/tiny]" in s and "0.50/0.50/0.50/0.50" in s for s in lines), lines


def test_never_faster_leaves_the_model_alone_and_says_why(tmp_path, table):
    table("never")
    prog = compiled(tmp_path)
    assert conversions(prog, "Net") == []
    lines = layout_lines(prog, "Net")
    assert ": no change" in lines[0]
    assert any("not applied: predicted channels-last / standard time by batch N = 1: 1.20, 2: 1.10, "
               "16: 1.05, 64: 1.00 (wins at ≤ 0.99)" in s for s in lines), lines


def test_fixed_batch_and_assumed_sizes_are_stated(tmp_path, table):
    table("from_batch")
    prog = compiled(tmp_path)
    assert conversions(prog, "Fixed") == []  # batch 2: 1.2
    assert any("not applied" in s and "at its batch 2" in s for s in layout_lines(prog, "Fixed"))
    sized = layout_lines(prog, "Sized")
    assert any("applied for N ≥ 6" in s and "for H, W at each of 64, 224" in s for s in sized), sized


def test_from_a_batch_on_is_checked_at_run_time_and_keeps_the_numbers(tmp_path, table):
    table("from_batch")
    prog = compiled(tmp_path)
    (fmt,) = conversions(prog, "Net")
    assert fmt.format == "channels_last" and fmt.min_batch == 6
    src = " ".join(prog.optimized(2).torch_source("Net").split())  # black may wrap the line
    assert "x if torch.is_grad_enabled() or x.shape[0] < 6 else x.contiguous( memory_format=torch.channels_last" in src
    torch.manual_seed(0)
    m0 = prog.to_torch("Net").eval()
    m2 = prog.to_torch("Net", opt=2).eval()
    m2.load_state_dict(prog.convert_weights("Net", m0.state_dict(), 2))
    seen = []
    for m in m2.modules():
        if isinstance(m, torch.nn.Conv2d):
            m.register_forward_pre_hook(lambda _, xs: seen.append(xs[0].is_contiguous(memory_format=torch.channels_last)))
    for n, layout in ((2, False), (16, True)):
        x = torch.randn(n, 3, 16, 16)
        seen.clear()
        with torch.no_grad():
            torch.testing.assert_close(m2(x), m0(x), atol=1e-5, rtol=1e-5)
        assert seen == [layout, layout], (n, seen)
    xs = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    w = prog.convert_weights("Net", {k: v.numpy() for k, v in m0.state_dict().items()}, 2)
    np.testing.assert_allclose(prog.to_numpy("Net", weights=w, opt=2)(xs), m0(torch.from_numpy(xs)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_the_measured_table_keeps_dcgans_discriminator_standard_at_batch_2(table):
    """The case of issue 18: DCGAN's 4x4 stride-2 convolutions ran 1.88x slower channels-last at
    batch 2. With the measured table, batch 2 keeps the standard layout."""
    table(None)
    prog = netc.compile_file(Path(__file__).resolve().parents[1] / "examples" / "dcgan.net")
    at = get("memory_format").min_batch_at
    convs = [a for a in conversions(prog, "Discriminator") if a.format == "channels_last"]
    assert all(at(a, t) == 0 or at(a, t) > 2 for a in convs for t in (1, 2))
    assert any("decided" in s for s in layout_lines(prog, "Discriminator"))


POOLED = """
model Pooled(x: float[N, 3, 32, 32]) -> float[N, 8, 8, 8] {
    return x -> conv2d(8, 3, padding=1) -> relu -> maxpool2d(3, stride=2, padding=1)
             -> conv2d(8, 3, padding=1) -> avgpool2d(2)
}
"""


def pool_table(tmp_path, monkeypatch, pools: dict) -> None:
    """A table in which the convolutions take as long in either layout and converting is
    free, and the pools take ``pools`` (``{"nchw": ..., "nhwc": ...}``)."""
    data = json.loads((FIXTURES / "layout_costs_always.json").read_text())
    for col in data["threads"].values():
        col["classes"] = {c: {b: pools if c.split("/")[0] in costs.pools() else {"nchw": 1.0, "nhwc": 1.0}
                              for b in per} for c, per in col["classes"].items()}
    path = tmp_path / f"pools_{pools['nhwc']}.json"  # tables are read once per path
    path.write_text(json.dumps(data))
    monkeypatch.setenv("NETC_LAYOUT_COSTS", str(path))


def test_the_pools_between_convolutions_are_weighed(tmp_path, monkeypatch):
    """The pools that would read a channels-last value are in the prediction, by their window
    elements: with convolutions as fast in either layout, pools 10x faster channels-last make
    the model convert, pools slower keep it standard, and the report names each pool's class."""
    pool_table(tmp_path, monkeypatch, {"nchw": 1.0, "nhwc": 0.1})
    prog = compiled(tmp_path, POOLED)
    assert [a.format for a in conversions(prog, "Pooled")] == ["channels_last", "contiguous"]
    lines = layout_lines(prog, "Pooled")
    assert any("maxpool2d `" in s and "[maxpool2d/k3/s2/narrow/mid]" in s and "0.10/0.10/0.10/0.10" in s
               for s in lines), lines
    assert any("[avgpool2d/k2/s2/narrow/tiny]" in s for s in lines), lines
    # work: conv 8*3*9*32*32 + maxpool 8*16*16*9 + conv 8*8*9*16*16 + avgpool 8*8*8*4 = 221184 + 18432 + 147456 + 2048
    expected = (221184 + 147456 + 0.1 * (18432 + 2048)) / (221184 + 147456 + 18432 + 2048)
    assert any(f"N = 1: {expected:.2f}" in s for s in lines), (expected, lines)
    pool_table(tmp_path, monkeypatch, {"nchw": 1.0, "nhwc": 2.0})
    assert conversions(compiled(tmp_path, POOLED), "Pooled") == []


def test_the_copy_of_each_weight_is_a_cost_per_call(tmp_path, monkeypatch):
    """A convolution reading a channels-last input copies its standard-layout weight on every
    call: a cost that does not grow with the batch. With convolutions 10% faster channels-last,
    no weight copy converts at every batch; a copy of 100 ns per weight element (Net: 1,240
    weight elements against 120,832 MACs a sample) loses at small batches and wins from one
    on, which the report gives per convolution, copy included."""
    data = json.loads((FIXTURES / "layout_costs_always.json").read_text())
    for col in data["threads"].values():
        col["classes"] = {c: {b: {"nchw": 1.0, "nhwc": 0.9} for b in per} for c, per in col["classes"].items()}
    for copy in (0.0, 100.0):
        for col in data["threads"].values():
            col["weight_convert_ns_per_element"] = copy
        path = tmp_path / f"copy_{copy}.json"
        path.write_text(json.dumps(data))
        monkeypatch.setenv("NETC_LAYOUT_COSTS", str(path))
        (fmt,) = [a for a in conversions(compiled(tmp_path), "Net") if a.format == "channels_last"]
        if copy == 0:
            assert fmt.min_batch == 1
            continue
        assert 2 < fmt.min_batch < 16, fmt  # N=2: (2 * 108,749 + 124,000) / (2 * 120,832) = 1.41; N=16: 0.96
        lines = layout_lines(compiled(tmp_path), "Net")
        # the strided conv: 65,536 MACs a sample, 1,024 weight elements: (0.9 * 65,536 + 102,400) / 65,536 at N=1
        assert any("[conv2d/large/s2/stem/tiny]" in s and "2.46/1.68/" in s for s in lines), lines


def test_symbolic_image_sizes_convert_from_the_batch_that_wins_at_every_assumed_size(tmp_path, monkeypatch):
    """The run-time check sees the batch only, so with H and W symbolic the decision holds at
    64 and at 224: a per-call cost (the weight copy: 1,000 ns for each of the 216 weight
    elements) is outweighed at batch 1 at 224×224 (10.8 M MACs a sample) but only from
    batch 4 at 64×64 (885 k MACs a sample); the model converts from 4."""
    data = json.loads((FIXTURES / "layout_costs_always.json").read_text())
    for col in data["threads"].values():
        col["classes"] = {c: {b: {"nchw": 1.0, "nhwc": 0.9} for b in per} for c, per in col["classes"].items()}
        col["weight_convert_ns_per_element"] = 1000.0
    path = tmp_path / "sizes.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("NETC_LAYOUT_COSTS", str(path))
    prog = compiled(tmp_path)
    (fmt,) = [a for a in conversions(prog, "Sized") if a.format == "channels_last"]
    assert fmt.min_batch == 4, fmt
    lines = layout_lines(prog, "Sized")
    assert any("at H=64, W=64: applied for N ≥ 4" in s for s in lines), lines
    assert any("at H=224, W=224: applied at every batch" in s for s in lines), lines


def test_the_measured_table_converts_resnet18_from_batch_8_on_one_thread(table):
    """ResNet-18 at batch 8 on one thread ran 0.83 of the standard layout's time channels-last
    (benchmarks/bench_layout.py) while the convolutions alone predicted 0.99: its 3x3 max pool
    takes 12x as long in the standard layout. With the pools weighed, batch 8 converts."""
    table(None)
    prog = netc.compile_file(Path(__file__).resolve().parents[1] / "examples" / "resnet18.net")
    model = next(m for m in prog.models if m not in prog.pairs)
    (fmt,) = [a for a in conversions(prog, model) if a.format == "channels_last"]
    assert 0 < get("memory_format").min_batch_at(fmt, 1) <= 8, fmt
    assert any("[maxpool2d/k3/s2/narrow/big]" in s for s in layout_lines(prog, model))


# -- per thread count -------------------------------------------------------------------------

def by_threads(tmp_path, monkeypatch, **columns: str) -> None:
    """Use a table whose column for each thread count (``t1=``, ``t2=``) is a fixed table's."""
    data = json.loads((FIXTURES / "layout_costs_always.json").read_text())
    data["threads"] = {k[1:]: json.loads((FIXTURES / f"layout_costs_{v}.json").read_text())["threads"]["1"]
                       for k, v in columns.items()}
    path = tmp_path / f"costs_{'_'.join(columns.values())}.json"
    path.write_text(json.dumps(data))
    monkeypatch.setenv("NETC_LAYOUT_COSTS", str(path))


def layouts(m2, m0, n: int, threads: int) -> list[bool]:
    """Whether each convolution of ``m2`` reads a channels-last tensor at batch ``n`` on
    ``threads`` torch threads; and that ``m2`` computes what ``m0`` does."""
    seen = []
    hooks = [m.register_forward_pre_hook(lambda _, xs: seen.append(xs[0].is_contiguous(memory_format=torch.channels_last)))
             for m in m2.modules() if isinstance(m, torch.nn.Conv2d)]
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        x = torch.randn(n, 3, 16, 16)
        with torch.no_grad():
            torch.testing.assert_close(m2(x), m0(x), atol=1e-5, rtol=1e-5)
    finally:
        torch.set_num_threads(before)
        for h in hooks:
            h.remove()
    return seen


def test_a_decision_that_differs_by_thread_count_is_checked_at_run_time(tmp_path, monkeypatch):
    by_threads(tmp_path, monkeypatch, t1="from_batch", t2="always")
    prog = compiled(tmp_path)
    (fmt,) = conversions(prog, "Net")
    assert fmt.format == "channels_last" and fmt.min_batch == (6, 1) and fmt.threads == (1, 2)
    src = " ".join(prog.optimized(2).torch_source("Net").split())
    assert ("x if torch.is_grad_enabled() or (torch.get_num_threads() < 2 and x.shape[0] < 6) else x.contiguous( "
            "memory_format=torch.channels_last") in src
    lines = layout_lines(prog, "Net")
    assert any("[conv2d/large/s2/stem/tiny]: channels-last / standard time, 1 thread: 1.50/1.20/0.80/0.80 at batch "
               "1/2/16/64; ≥ 2 threads (measured at 2): 0.50/0.50/0.50/0.50" in s for s in lines), lines
    assert any("1 thread: applied for N ≥ 6: predicted channels-last / standard time by batch N = 1: 1.50, 2: 1.20, "
               "16: 0.80, 64: 0.80; table column 1: fixed clock" in s for s in lines), lines
    assert any("depends on the thread count, checked at run time (torch.get_num_threads()): 1 thread: applied for "
               "N ≥ 6; ≥ 2 threads: applied at every batch" in s for s in lines), lines
    torch.manual_seed(0)
    m0 = prog.to_torch("Net").eval()
    m2 = prog.to_torch("Net", opt=2).eval()
    m2.load_state_dict(prog.convert_weights("Net", m0.state_dict(), 2))
    assert layouts(m2, m0, 2, threads=1) == [False, False]
    assert layouts(m2, m0, 16, threads=1) == [True, True]
    assert layouts(m2, m0, 2, threads=2) == [True, True]


def test_a_fixed_batch_converts_by_thread_count_alone(tmp_path, monkeypatch):
    by_threads(tmp_path, monkeypatch, t1="always", t2="never")
    prog = compiled(tmp_path)
    (fmt, _) = conversions(prog, "Fixed")  # to channels-last, and back at the result
    assert fmt.min_batch == (1, 0) and fmt.threads == (1, 2)
    assert "or torch.get_num_threads() >= 2 else" in " ".join(prog.optimized(2).torch_source("Fixed").split())
    lines = layout_lines(prog, "Fixed")
    assert any("≥ 2 threads (measured at 2): not applied: predicted 1.10 of the standard layout's time at its "
               "batch 2" in s for s in lines), lines
    assert any("1 thread: applied at its batch 2; ≥ 2 threads: not applied" in s for s in lines), lines


def test_the_same_decision_at_every_thread_count_emits_no_thread_check(tmp_path, monkeypatch):
    by_threads(tmp_path, monkeypatch, t1="from_batch", t2="from_batch")
    prog = compiled(tmp_path)
    (fmt,) = conversions(prog, "Net")
    assert fmt.min_batch == 6 and fmt.threads == ()
    src = prog.optimized(2).torch_source("Net")
    assert "get_num_threads" not in src and "x.shape[0] < 6" in src
    lines = layout_lines(prog, "Net")
    assert any("applied for N ≥ 6 (checked at run time) at every thread count" in s for s in lines), lines
    assert sum("applied for N ≥ 6: predicted" in s for s in lines) == 2  # one line per thread count
    by_threads(tmp_path, monkeypatch, t1="never", t2="never")
    assert conversions(compiled(tmp_path), "Net") == []


@pytest.mark.parametrize("min_batch, threads", [
    ((6, 3), (1, 2)), ((0, 3), (1, 2)), ((3, 0), (1, 2)), ((1, 3), (1, 2)), ((3, 1), (1, 3)),
    ((0, 1), (1, 2)), ((1, 0), (1, 2)), ((0, 6, 1), (1, 2, 4)),
])
def test_the_emitted_check_converts_where_the_attributes_say(min_batch, threads):
    """The torch lowering's condition, run for real at 1–4 threads and several batches,
    against the op's own reading of its attributes (min_batch_at)."""
    from netc.backends.torch.ops import _keep_layout

    op = get("memory_format")
    a = op.Attrs(format="channels_last", min_batch=min_batch, threads=threads)
    keep = "torch.is_grad_enabled()" + _keep_layout(a)
    before = torch.get_num_threads()
    try:
        for t in (1, 2, 3, 4):
            torch.set_num_threads(t)
            for n in (1, 3, 6, 16):
                m = op.min_batch_at(a, t)
                with torch.no_grad():
                    kept = eval(keep.format(x0="x"), {"torch": torch, "x": torch.zeros(n, 1, 1, 1)})
                assert kept == (m == 0 or n < m), (keep, t, n)
    finally:
        torch.set_num_threads(before)


def test_thread_counts_between_columns_take_the_nearest():
    assert costs.thread_ranges([1]) == [(1, None)]
    assert costs.thread_ranges([1, 2]) == [(1, 1), (2, None)]
    assert costs.thread_ranges([1, 2, 4, 16]) == [(1, 1), (2, 3), (4, 10), (11, None)]
    assert costs.thread_ranges([2, 8]) == [(1, 5), (6, None)]


@pytest.mark.parametrize("text, why", [
    (None, "No such file or directory"),
    ("{not json", "not JSON"),
    ("[1, 2]", "not a JSON object"),
    ('{"threads": {"1": {}}}', ("it has no format field (the one-thread table of before format 2); this netc "
                                "reads format 3")),
    ('{"format": 4, "threads": {}}', "it has format 4"),
    ('{"format": 2, "threads": {}}', "it has format 2 (without the cost of a weight's copy); this netc reads format 3"),
    ('{"format": 3, "threads": {"x": {}}}', "thread count 'x' is not a positive integer"),
    ('{"format": 3, "threads": {"1": {"classes": {}}}}', ('thread column 1 needs "classes", "convert_ns_per_element", '
                                                          '"weight_convert_ns_per_element"')),
    (('{"format": 3, "threads": {"1": {"measured": "", "convert_ns_per_element": {"1": 0.1}, '
      '"weight_convert_ns_per_element": 1.0, "classes": {"c": {"2": {"nchw": 1, "nhwc": 1}}}}}}'),
     "thread column 1, class c: needs nchw and nhwc times at the batches of convert_ns_per_element (1)"),
])
def test_a_table_netc_cannot_read_is_a_clear_error(tmp_path, monkeypatch, capsys, text, why):
    path = tmp_path / "costs.json"
    if text is not None:
        path.write_text(text)
    monkeypatch.setenv("NETC_LAYOUT_COSTS", str(path))
    with pytest.raises(costs.CostTableError, match="cannot read the layout cost table") as e:
        compiled(tmp_path).optimized(2)
    assert why in str(e.value)
    spec = tmp_path / "m.net"
    assert cli.main(["compile", str(spec), "--backend", "torch", "-O2", "-o", str(tmp_path / "m.py")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"netc: error: cannot read the layout cost table {path}: ") and why in err, err
    assert "Traceback" not in err and "hint: write one with `python benchmarks/bench_costs.py" in err
