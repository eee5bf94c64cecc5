"""Checkpoints in (issue 13): torchvision's ResNet-18, MobileNetV2 and ViT-B/16 (``vit_b_16``
itself, 10 classes) and Hugging Face's GPT-2, BERT and LLaMA (random weights, small configs for
the language models, nothing downloaded) saved as ``.pt``
and as ``.safetensors``, loaded into the matching example by ``netc weights`` with no name
table anywhere (names are mapped by structure), then run: the netc module gives the
reference's outputs within 1e-5 relative. A ``.safetensors`` file keeps its names sorted,
not in registration order, so it exercises the order-free side of the search too.

Also: a checkpoint of another architecture (or another head size) is refused naming the
tensors that did not fit; the saved mapping loads again by name; the NumPy backend runs the
written weights; the layout conversions (Conv1D transposes, q/k/v packing, a fused gate
split, tied and non-weight tensors) are the ones the mapping reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import references as ref
import safetensors.torch
import torch
import torchvision
from cli_helpers import run_cli
from netc.runtime.weights import WeightError, save_npz
from test_zoo_cnn import randomize as randomize_cnn
from test_zoo_language import (
    BERT,
    GPT2,
    LLAMA,
    bert_inputs,
    bert_reference,
    bert_weights,
    gpt2_reference,
    gpt2_weights,
    llama_reference,
    llama_weights,
)
from test_zoo_vision import randomize as randomize_vit

import netc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOL = 1e-5


def _vit():
    return randomize_vit(torchvision.models.vit_b_16(num_classes=10), seed=1)


def _tokens(vocab, shape):
    return (torch.randint(0, vocab, shape, generator=torch.Generator().manual_seed(1)),)


CASES = {  # key -> (example, model, defines, reference, inputs)
    "resnet18": ("resnet18.net", "ResNet18", {"classes": 10},
                 lambda: randomize_cnn(torchvision.models.resnet18(num_classes=10), seed=1),
                 lambda: (torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2)),)),
    "mobilenet_v2": ("mobilenet_v2.net", "MobileNetV2", {"classes": 10},
                     lambda: randomize_cnn(torchvision.models.mobilenet_v2(num_classes=10), seed=1),
                     lambda: (torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)),)),
    "vit": ("vit_b16.net", "ViTB16", {"classes": 10}, _vit,  # vit_b_16 itself: 224 x 224, patches of 16
            lambda: (torch.randn(1, 3, 224, 224, generator=torch.Generator().manual_seed(2)),)),
    "gpt2": ("gpt2.net", "GPT2", GPT2, gpt2_reference, lambda: _tokens(GPT2["vocab"], (2, 13))),
    "bert": ("bert.net", "Bert", BERT, bert_reference, bert_inputs),
    "llama": ("llama.net", "Llama", LLAMA, llama_reference, lambda: _tokens(LLAMA["vocab"], (2, 9))),
}


def reference_output(key, ref, inputs):
    if key == "bert":
        tokens, pad, types = inputs
        return ref(input_ids=tokens, attention_mask=pad.long(), token_type_ids=types).last_hidden_state
    out = ref(*inputs)
    return getattr(out, "logits", out)


def rel(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


def defines(d: dict) -> list[str]:
    return [x for k, v in d.items() for x in ("-D", f"{k}={v}")]


@pytest.fixture(scope="module")
def case(request, tmp_path_factory):
    """One reference, saved as .pt (its state_dict) and .safetensors (tied tensors once), its
    outputs, and the compiled example."""
    key = request.param
    spec, model, d, build, make_inputs = CASES[key]
    torch.manual_seed(0)
    ref = build().eval()
    folder = tmp_path_factory.mktemp(key)
    torch.save(ref.state_dict(), folder / "ref.pt")
    safetensors.torch.save_model(ref, str(folder / "ref.safetensors"))
    inputs = make_inputs()
    with torch.no_grad():
        want = reference_output(key, ref, inputs)
    return {"key": key, "spec": spec, "model": model, "defines": d, "ref": ref, "folder": folder,
            "inputs": inputs, "want": want.numpy(), "prog": netc.compile_file(EXAMPLES / spec, defines=d)}


@pytest.mark.parametrize("case", sorted(CASES), indirect=True)
def test_checkpoints_load_through_the_cli_and_match(case, monkeypatch):
    folder, model = case["folder"], case["model"]
    net = case["prog"].to_torch(model).eval()
    for source, out in (("ref.pt", "w.safetensors"), ("ref.safetensors", "w.npz")):
        code, _, err = run_cli("weights", str(EXAMPLES / case["spec"]), *defines(case["defines"]), "--model", model,
                               "--from", source, "-o", out, "--mapping-out", out + ".json",
                               cwd=folder, monkeypatch=monkeypatch)
        assert code == 0, err
        written = safetensors.torch.load_file(folder / out) if out.endswith(".safetensors") else \
            {k: torch.from_numpy(v) for k, v in np.load(folder / out).items()}
        assert set(written) == set(net.state_dict())
        net.load_state_dict(written)  # strict: every weight, nothing else
        with torch.no_grad():
            got = net(*case["inputs"])
        got = got[0] if isinstance(got, tuple) else got
        assert rel(got.numpy(), case["want"]) <= TOL, (source, rel(got.numpy(), case["want"]))


CONVERSIONS = {  # what the saved mapping of each says, beyond copies
    "gpt2": lambda m: {e["conversion"] for e in m["entries"]} == {"copy", "transpose"}
    and m["tied"] == {"lm_head.weight": "transformer.wte.weight"},
    "bert": lambda m: any(e["conversion"] == "concat" and [s.rsplit(".", 2)[-2] for s in e["from"]]
                          == ["query", "key", "value"] for e in m["entries"]),
    "llama": lambda m: any(e["conversion"] == "concat" and [s.rsplit(".", 2)[-2] for s in e["from"]]
                           == ["q_proj", "k_proj", "v_proj"] for e in m["entries"]),
    "resnet18": lambda m: {e["conversion"] for e in m["entries"]} == {"copy"}
    and {"fc.weight": "linear.weight"}.items() <= {e["from"][0]: e["netc"] for e in m["entries"]}.items(),
}


@pytest.mark.parametrize("case", sorted(CONVERSIONS), indirect=True)
def test_the_saved_mapping_names_the_conversions_and_reloads_by_name(case):
    folder = case["folder"]
    case["prog"].load_weights(case["model"], folder / "ref.pt").mapping.save(folder / "m.json")
    mapping = json.loads((folder / "m.json").read_text())
    assert mapping["model"] == case["model"] and CONVERSIONS[case["key"]](mapping), mapping
    # by name, the order of the tensors does not matter: reversed, they load the same
    sd = case["ref"].state_dict()
    backwards = dict(reversed(list(sd.items())))
    by_name = case["prog"].load_weights(case["model"], backwards, mapping=folder / "m.json")
    by_structure = case["prog"].load_weights(case["model"], sd)
    assert by_name.keys() == by_structure.keys()
    assert all(torch.equal(by_name[k], by_structure[k]) for k in by_name)
    # and from the other file, which may keep the other copy of a tied tensor (GPT-2's lm_head)
    from_file = case["prog"].load_weights(case["model"], folder / "ref.safetensors", mapping=folder / "m.json")
    assert all(torch.equal(from_file[k], by_structure[k]) for k in by_name)


@pytest.mark.parametrize("case", ["gpt2"], indirect=True)
def test_numpy_backend_runs_the_written_weights(case):
    path = case["folder"] / "numpy.npz"
    save_npz(case["prog"].load_weights(case["model"], case["folder"] / "ref.safetensors", as_numpy=True), path)
    ex = case["prog"].to_numpy(case["model"], weights=str(path))
    assert rel(ex(case["inputs"][0].numpy()), case["want"]) <= TOL


@pytest.mark.parametrize("case", ["resnet18"], indirect=True)
def test_another_architecture_is_refused_naming_the_tensors(case, monkeypatch):
    folder = case["folder"]
    code, out, err = run_cli("weights", str(EXAMPLES / "mobilenet_v2.net"), "--from", "ref.pt", "-o", "m.npz",
                             cwd=folder, monkeypatch=monkeypatch)
    assert code == 1 and out == "" and "Traceback" not in err
    assert all(line.startswith("netc: error: ref.pt: ") for line in err.splitlines()), err
    assert "`conv1.weight` [64, 3, 7, 7]: fits no netc weight" in err
    assert "`conv_block.conv2d.weight` [32, 3, 3, 3]: no checkpoint tensor fits" in err
    assert not (folder / "m.npz").exists()
    # the same ResNet with a 1000-class head: exactly the head's four tensors are named
    with pytest.raises(WeightError) as e:
        netc.compile_file(EXAMPLES / "resnet18.net").load_weights("ResNet18", case["ref"])
    named = {line.split("`")[1] for line in e.value.problems if "`" in line}
    assert named == {"fc.weight", "fc.bias", "linear.weight", "linear.bias"}, e.value.problems


@pytest.mark.parametrize("case", ["llama"], indirect=True)
def test_llama_fused_gate_buffers_and_opt2(case):
    """A checkpoint whose MLP stores gate and up as one ``gate_up_proj`` (rows: gate, then
    up) is split onto netc's two layers; rotary tables and integer ids are set aside; the
    weights load into the -O2 module too."""
    sd = {}
    for k, v in case["ref"].state_dict().items():
        if k.endswith("mlp.gate_proj.weight"):
            sd[k.replace("gate_proj", "gate_up_proj")] = torch.cat([v, case["ref"].state_dict()[
                k.replace("gate_proj", "up_proj")]])
        elif not k.endswith("mlp.up_proj.weight"):
            sd[k] = v
    sd["model.rotary_emb.inv_freq"] = torch.rand(8)
    sd["model.position_ids"] = torch.arange(9)
    prog, model = case["prog"], case["model"]
    w = prog.load_weights(model, sd, opt=2)
    assert sorted(w.mapping.ignored) == ["model.position_ids", "model.rotary_emb.inv_freq"]
    assert sum(e.conversion == "split" for e in w.mapping.entries) == 2 * LLAMA["layers"]
    net = prog.to_torch(model, opt=2).eval()
    net.load_state_dict(w)
    with torch.no_grad():
        assert rel(net(*case["inputs"]).numpy(), case["want"]) <= TOL


@pytest.mark.parametrize("case", ["bert"], indirect=True)
def test_netc_state_dicts_and_wrong_shapes(case):
    prog, model = case["prog"], case["model"]
    own = prog.to_torch(model).state_dict()
    w = prog.load_weights(model, own, as_numpy=True)  # netc's own names: taken as they are
    assert list(w) == list(own) and all(np.array_equal(w[k], own[k].numpy()) for k in own)
    sd = dict(case["ref"].state_dict())
    sd["encoder.layer.1.intermediate.dense.weight"] = torch.zeros(81, BERT["width"])
    with pytest.raises(WeightError) as e:
        prog.load_weights(model, sd)
    assert "encoder.layer.1.intermediate.dense.weight" in str(e.value)
    assert "bert_layer.1.intermediate.weight" in str(e.value)


SQUARE = """
model Square(x: float[N, 8]) -> float[N, 8] {
    return x -> linear(8) -> relu -> linear(8)
}
"""


def test_square_matrices_are_ambiguous_until_a_mapping_says(tmp_path, monkeypatch):
    (tmp_path / "sq.net").write_text(SQUARE)
    prog = netc.compile_file(tmp_path / "sq.net")
    torch.manual_seed(0)
    ref = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU(), torch.nn.Linear(8, 8))
    with pytest.raises(WeightError) as e:
        prog.load_weights("Square", ref)
    assert "`linear.weight`" in str(e.value) and "`linear_1.weight`" in str(e.value)
    mapping = {"format": "netc-weight-mapping/1", "model": "Square", "entries": [
        {"netc": n, "from": [f"{i}.{leaf}"]} for n, i, leaf in
        [("linear.weight", 0, "weight"), ("linear.bias", 0, "bias"), ("linear_1.weight", 2, "weight"),
         ("linear_1.bias", 2, "bias")]]}
    net = prog.to_torch("Square").eval()
    net.load_state_dict(prog.load_weights("Square", ref, mapping=mapping))
    x = torch.randn(3, 8)
    with torch.no_grad():
        assert torch.allclose(net(x), ref(x), atol=1e-6)
    (tmp_path / "sq.json").write_text(json.dumps(mapping))
    torch.save(ref.state_dict(), tmp_path / "sq.pt")
    code, _, err = run_cli("weights", "sq.net", "--from", "sq.pt", "--mapping", "sq.json", "-o", "sq.safetensors",
                           cwd=tmp_path, monkeypatch=monkeypatch)
    assert code == 0, err
    assert safetensors.torch.load_file(tmp_path / "sq.safetensors").keys() == net.state_dict().keys()
    del mapping["entries"][-1]
    with pytest.raises(WeightError, match=r"tensor `2.bias` \[8\] is not in the mapping"):
        prog.load_weights("Square", ref, mapping=mapping)


def test_unreadable_checkpoints_are_diagnostics(tmp_path, monkeypatch):
    (tmp_path / "sq.net").write_text(SQUARE)
    torch.save(torch.nn.Linear(8, 8), tmp_path / "module.pt")  # a pickled module, not a state dict
    (tmp_path / "junk.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}......")
    (tmp_path / "w.json").write_text("{}")
    for source, words in (("module.pt", "holds a pickled torch.nn.modules.linear.Linear"),
                          ("junk.safetensors", "not a readable .safetensors checkpoint"),
                          ("missing.pt", "no such file"), ("w.json", "unknown checkpoint format .json")):
        code, out, err = run_cli("weights", "sq.net", "--from", source, "-o", "w.npz", cwd=tmp_path,
                                 monkeypatch=monkeypatch)
        assert code == 1 and out == "" and "Traceback" not in err, err
        assert err.startswith(f"netc: error: {source}: ") and words in err, err
    torch.save(torch.nn.Linear(8, 8).state_dict(), tmp_path / "lin.pt")
    for mapping, words in (("w.json", "is not a netc weight mapping: its format is None"),
                           ("none.json", "cannot read the mapping")):
        code, out, err = run_cli("weights", "sq.net", "--from", "lin.pt", "--mapping", mapping, "-o", "w.npz",
                                 cwd=tmp_path, monkeypatch=monkeypatch)
        assert code == 1 and out == "" and err.startswith(f"netc: error: {mapping}") and words in err, err
    assert not (tmp_path / "w.npz").exists()


def _by_table(reference, rename) -> dict:
    """A hand-written table's netc weights (tests/references.py): each name renamed, tied once."""
    src = dict(reference.named_parameters()) | dict(reference.named_buffers())
    return {rename(k): v for k, v in src.items()}


TABLES = {  # example, model, defines, reference, its hand-written netc weights
    "lenet": ("lenet.net", "LeNet", {}, lambda: ref.LeNet(), lambda r: _by_table(r, ref.LENET_NAMES)),
    "resnet18_by_hand": ("resnet18.net", "ResNet18", {"classes": 10}, lambda: ref.ResNet18(10),
                         lambda r: _by_table(r, ref.RESNET18_NAMES)),
    "gpt2_by_hand": ("gpt2.net", "GPT2", {"vocab": 100, "context": 32, "layers": 2, "heads": 2, "width": 32},
                     lambda: ref.GPT2(100, 32, 2, 2, 32, 0.1), lambda r: _by_table(r, ref.gpt2_names(2))),
    "lstm_lm": ("lstm_lm.net", "LSTMLanguageModel", {"vocab": 50, "dim": 24, "layers": 2, "p": 0.5},
                lambda: ref.WordLM(50, 24, 2, 0.5), lambda r: _by_table(r, ref.WORD_LM_NAMES)),
    "gru": ("gru_classifier.net", "GRUClassifier", {"vocab": 60, "classes": 4, "dim": 16, "hidden": 24},
            lambda: ref.GRUClassifier(60, 4, 16, 24), lambda r: _by_table(r, ref.GRU_CLASSIFIER_NAMES)),
    "seq2seq_attention": ("seq2seq_attention.net", "Seq2SeqAttention", {"src_vocab": 50, "tgt_vocab": 40, "hidden": 16},
                          lambda: ref.Seq2SeqAttention(50, 40, 16, 0.1),
                          lambda r: _by_table(r, ref.seq2seq_attention_names)),
    "hf_gpt2": ("gpt2.net", "GPT2", GPT2, gpt2_reference, gpt2_weights),
    "hf_bert": ("bert.net", "Bert", BERT, bert_reference, bert_weights),
    "hf_llama": ("llama.net", "Llama", LLAMA, llama_reference, llama_weights),
}


@pytest.mark.parametrize("key", sorted(TABLES))
def test_structure_gives_what_the_hand_written_tables_give(key):
    """The name tables the parity tests carry (tests/references.py, tests/test_zoo_language.py),
    reproduced by structure alone: the same netc names, the same tensors."""
    spec, model, d, build, table = TABLES[key]
    torch.manual_seed(0)
    reference = build()
    want = {k: v for k, v in table(reference).items() if not k.endswith("num_batches_tracked")}
    got = netc.compile_file(EXAMPLES / spec, defines=d or None).load_weights(model, reference)
    got = {k: v for k, v in got.items() if not k.endswith("num_batches_tracked")}
    assert got.keys() == want.keys()
    assert all(torch.equal(got[k], want[k]) for k in want), [k for k in want if not torch.equal(got[k], want[k])]
