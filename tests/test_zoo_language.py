"""Examples that equal published architectures of Hugging Face ``transformers``, checked
against the reference model built from a small config (random init, nothing downloaded).

Each test copies the reference's weights into netc's module by structure (separate q, k, v
projections packed into the in-projection), asserts that every netc weight was given exactly
once, and compares outputs in eval mode: torch -O0, torch -O2 and the NumPy executor, each
within 1e-5 of the reference relative to its largest output.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import transformers

import netc

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TOL = 1e-5


def rel(got, want) -> float:
    got, want = np.asarray(got, dtype=np.float64), np.asarray(want, dtype=np.float64)
    return float(np.abs(got - want).max() / np.abs(want).max())


def load(module: torch.nn.Module, weights: dict[str, torch.Tensor]) -> None:
    """All of ``module``'s weights from ``weights``: no name missing, none left over."""
    own = module.state_dict()
    assert set(weights) == set(own), (sorted(set(own) ^ set(weights)))
    for k, v in weights.items():
        assert own[k].shape == v.shape, (k, own[k].shape, v.shape)
    module.load_state_dict(weights)


# -- LLaMA ---------------------------------------------------------------------------------

LLAMA = {"vocab": 128, "width": 64, "layers": 2, "heads": 4, "kv_heads": 2, "ff": 172, "eps": 1e-6}


def llama_reference():
    config = transformers.LlamaConfig(vocab_size=LLAMA["vocab"], hidden_size=LLAMA["width"],
                                      num_hidden_layers=LLAMA["layers"], num_attention_heads=LLAMA["heads"],
                                      num_key_value_heads=LLAMA["kv_heads"], intermediate_size=LLAMA["ff"],
                                      rms_norm_eps=LLAMA["eps"], rope_theta=10000.0)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # RMSNorm weights start at 1: randomise them so a wrong copy shows
        for name, p in model.named_parameters():
            if "norm" in name:
                p.uniform_(0.5, 1.5)
    return model


def llama_weights(ref) -> dict[str, torch.Tensor]:
    sd = ref.state_dict()
    out = {"embedding.weight": sd["model.embed_tokens.weight"], "rmsnorm.weight": sd["model.norm.weight"],
           "linear.weight": sd["lm_head.weight"]}
    for i in range(LLAMA["layers"]):
        r, n = f"model.layers.{i}.", f"llama_block.{i}."
        out[n + "rmsnorm.weight"] = sd[r + "input_layernorm.weight"]
        out[n + "self_attention.in_proj_weight"] = torch.cat([sd[r + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        out[n + "self_attention.out_proj.weight"] = sd[r + "self_attn.o_proj.weight"]
        out[n + "h.weight"] = sd[r + "post_attention_layernorm.weight"]
        out[n + "gate.weight"] = sd[r + "mlp.gate_proj.weight"]
        out[n + "up.weight"] = sd[r + "mlp.up_proj.weight"]
        out[n + "linear.weight"] = sd[r + "mlp.down_proj.weight"]
    return out


def test_llama_equals_hugging_face():
    ref = llama_reference()
    prog = netc.compile_file(EXAMPLES / "llama.net", defines=LLAMA)
    tokens = torch.randint(0, LLAMA["vocab"], (2, 9), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref(tokens).logits.numpy()
        for opt in (0, 2):  # -O2 stacks the SwiGLU's gate and up projections into one
            m = prog.to_torch("Llama", opt=opt).eval()
            load(m, prog.convert_weights("Llama", llama_weights(ref), opt))
            assert rel(m(tokens).numpy(), want) <= TOL, opt
    ex = prog.to_numpy("Llama", weights={k: v.numpy() for k, v in llama_weights(ref).items()})
    assert rel(ex(tokens.numpy()), want) <= TOL


def test_llama_source_uses_one_sdpa_with_gqa():
    """-O2's torch source: each layer's attention is the prelude's Attention, whose one SDPA call
    takes the grouped k and v (enable_gqa) and the rotated q and k."""
    src = netc.compile_file(EXAMPLES / "llama.net", defines=LLAMA).optimized(2).torch_source("Llama")
    # (the block's sizes are its constructor arguments: the model's width, heads and kv_heads flow down)
    assert "Attention(D,heads,kv_heads=kv_heads,causal=True,bias=False,rotary=True)" in "".join(src.split())
    assert "LlamaBlock(width,eps,heads,kv_heads,ff)" in "".join(src.split())  # gate, up: ff wide each
    assert src.count("F.scaled_dot_product_attention(") == 1
    assert "enable_gqa=self.kv_heads != self.heads" in src


# -- BERT ----------------------------------------------------------------------------------

BERT = {"vocab": 96, "width": 48, "layers": 2, "heads": 4, "ff": 80, "context": 24, "type_vocab": 2}


def bert_reference():
    config = transformers.BertConfig(vocab_size=BERT["vocab"], hidden_size=BERT["width"],
                                     num_hidden_layers=BERT["layers"], num_attention_heads=BERT["heads"],
                                     intermediate_size=BERT["ff"], max_position_embeddings=BERT["context"],
                                     type_vocab_size=BERT["type_vocab"])
    torch.manual_seed(0)
    model = transformers.BertModel(config).eval()
    with torch.no_grad():  # layernorms start at (1, 0): randomise them so a wrong copy shows
        for name, p in model.named_parameters():
            if "LayerNorm" in name:
                p.uniform_(0.5, 1.5) if name.endswith("weight") else p.uniform_(-0.5, 0.5)
    return model


def bert_weights(ref) -> dict[str, torch.Tensor]:
    sd = ref.state_dict()
    e = "embeddings."
    out = {"words.weight": sd[e + "word_embeddings.weight"], "where.weight": sd[e + "position_embeddings.weight"],
           "kinds.weight": sd[e + "token_type_embeddings.weight"],
           "embeddings.weight": sd[e + "LayerNorm.weight"], "embeddings.bias": sd[e + "LayerNorm.bias"],
           "pooler.weight": sd["pooler.dense.weight"], "pooler.bias": sd["pooler.dense.bias"]}
    for i in range(BERT["layers"]):
        r, n = f"encoder.layer.{i}.", f"bert_layer.{i}."
        a = r + "attention.self."
        for x in ("weight", "bias"):
            out[n + f"attention.in_proj_{x}"] = torch.cat([sd[a + f"{y}.{x}"] for y in ("query", "key", "value")])
            out[n + f"attention.out_proj.{x}"] = sd[r + f"attention.output.dense.{x}"]
            out[n + f"h.{x}"] = sd[r + f"attention.output.LayerNorm.{x}"]
            out[n + f"intermediate.{x}"] = sd[r + f"intermediate.dense.{x}"]
            out[n + f"output.{x}"] = sd[r + f"output.dense.{x}"]
            out[n + f"layernorm.{x}"] = sd[r + f"output.LayerNorm.{x}"]
    return out


def bert_inputs():
    g = torch.Generator().manual_seed(1)
    tokens = torch.randint(0, BERT["vocab"], (3, 11), generator=g)
    types = torch.randint(0, BERT["type_vocab"], (3, 11), generator=g)
    pad = torch.ones(3, 11, dtype=torch.bool)
    pad[1, 7:] = False  # the second sequence is 7 tokens long, the third 4
    pad[2, 4:] = False
    return tokens, pad, types


def test_bert_equals_hugging_face_with_padding():
    ref = bert_reference()
    prog = netc.compile_file(EXAMPLES / "bert.net", defines=BERT)
    tokens, pad, types = bert_inputs()
    with torch.no_grad():
        out = ref(input_ids=tokens, attention_mask=pad.long(), token_type_ids=types)
        want = (out.last_hidden_state.numpy(), out.pooler_output.numpy())
        for opt in (0, 2):
            m = prog.to_torch("Bert", opt=opt).eval()
            load(m, prog.convert_weights("Bert", bert_weights(ref), opt))
            got = m(tokens, pad, types)
            assert max(rel(g.numpy(), w) for g, w in zip(got, want)) <= TOL, opt
            # the mask matters: without it the real tokens of the padded sequences change
            unmasked = m(tokens, torch.ones_like(pad), types)[0].numpy()
            assert rel(unmasked[1, :7], want[0][1, :7]) > 1e-3
    ex = prog.to_numpy("Bert", weights={k: v.numpy() for k, v in bert_weights(ref).items()})
    got = ex(tokens.numpy(), pad.numpy(), types.numpy())
    assert max(rel(g, w) for g, w in zip(got, want)) <= TOL


def test_bert_source_uses_one_sdpa_with_the_padding_mask():
    src = netc.compile_file(EXAMPLES / "bert.net", defines=BERT).optimized(2).torch_source("Bert")
    assert src.count("F.scaled_dot_product_attention(") == 1
    assert "padding=pad" in "".join(src.split())


# -- GPT-2 ---------------------------------------------------------------------------------

GPT2 = {"vocab": 96, "context": 24, "layers": 2, "heads": 4, "width": 48}


def gpt2_reference():
    config = transformers.GPT2Config(vocab_size=GPT2["vocab"], n_positions=GPT2["context"], n_layer=GPT2["layers"],
                                     n_head=GPT2["heads"], n_embd=GPT2["width"], bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():  # layernorms start at (1, 0) and biases at 0: randomise them so a wrong copy shows
        for name, p in model.named_parameters():
            if name.endswith("bias") or ".ln_" in name:
                p.uniform_(0.5, 1.5) if ".ln_" in name and name.endswith("weight") else p.uniform_(-0.5, 0.5)
            if "mlp" in name and name.endswith("weight"):  # an MLP of size ~1, where GELU's tanh form differs
                p.normal_(0.0, 0.2)
    return model


def gpt2_weights(ref) -> dict[str, torch.Tensor]:
    return gpt2_weights_of(ref, GPT2["layers"])


def gpt2_weights_of(ref, layers: int) -> dict[str, torch.Tensor]:
    """netc's weights from GPT2LMHeadModel's: its Conv1D weights are [in, out], so transposed;
    c_attn is already q, k, v stacked. No output projection: it is ``wte`` (tied)."""
    sd = ref.state_dict()
    out = {"wte.weight": sd["transformer.wte.weight"], "wpe.weight": sd["transformer.wpe.weight"],
           "layernorm.weight": sd["transformer.ln_f.weight"], "layernorm.bias": sd["transformer.ln_f.bias"]}
    for i in range(layers):
        r, n = f"transformer.h.{i}.", f"gpt2_block.{i}."
        for x in ("weight", "bias"):
            out[n + f"layernorm.{x}"] = sd[r + f"ln_1.{x}"]
            out[n + f"layernorm_1.{x}"] = sd[r + f"ln_2.{x}"]
        for theirs, ours in (("attn.c_attn", "self_attention.in_proj_"), ("attn.c_proj", "self_attention.out_proj."),
                             ("mlp.c_fc", "linear."), ("mlp.c_proj", "linear_1.")):
            out[n + ours + "weight"] = sd[r + theirs + ".weight"].T.contiguous()
            out[n + ours + "bias"] = sd[r + theirs + ".bias"]
    return out


def test_gpt2_equals_hugging_face():
    ref = gpt2_reference()
    assert ref.lm_head.weight is ref.transformer.wte.weight  # tied in the reference too
    prog = netc.compile_file(EXAMPLES / "gpt2.net", defines=GPT2)
    tokens = torch.randint(0, GPT2["vocab"], (2, 13), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = ref(tokens).logits.numpy()
        for opt in (0, 2):
            m = prog.to_torch("GPT2", opt=opt).eval()
            load(m, prog.convert_weights("GPT2", gpt2_weights(ref), opt))
            assert rel(m(tokens).numpy(), want) <= TOL, opt
    ex = prog.to_numpy("GPT2", weights={k: v.numpy() for k, v in gpt2_weights(ref).items()})
    assert rel(ex(tokens.numpy()), want) <= TOL


def test_gelu_is_gpt2s_tanh_form():
    """The exact GELU would be off by more than the tolerance: the example's MLP is gelu_new."""
    ref = gpt2_reference()
    for block in ref.transformer.h:
        block.mlp.act = torch.nn.GELU()  # exact erf form
    prog = netc.compile_file(EXAMPLES / "gpt2.net", defines=GPT2)
    tokens = torch.randint(0, GPT2["vocab"], (2, 13), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        m = prog.to_torch("GPT2").eval()
        load(m, gpt2_weights(ref))
        assert rel(m(tokens).numpy(), ref(tokens).logits.numpy()) > 10 * TOL


# -- the published sizes are the references' own --------------------------------------------

def test_default_sizes_count_the_references_params():
    """``netc check`` of each example at its defaults gives the parameter count of the Hugging
    Face model of the full config (built on the meta device: no memory, no init)."""
    configs = {
        ("bert.net", "Bert"): lambda: transformers.BertModel(transformers.BertConfig()),
        ("gpt2.net", "GPT2"): lambda: transformers.GPT2LMHeadModel(transformers.GPT2Config()),
        ("llama.net", "Llama"): lambda: transformers.LlamaForCausalLM(transformers.LlamaConfig(
            vocab_size=32000, hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
            num_attention_heads=32, num_key_value_heads=4)),
    }
    for (spec, name), build in configs.items():
        with torch.device("meta"):
            want = sum(p.numel() for p in build().parameters())
        assert netc.compile_file(EXAMPLES / spec).summary(name).params == want, spec


def test_gpt2_starts_as_hugging_face_does():
    """Initialisation statistics: every weight's std (and each bias, gain and shift) as
    GPT2LMHeadModel's _init_weights leaves them, the residual projections at 0.02/sqrt(2 layers)."""
    sizes = {"vocab": 512, "context": 128, "layers": 3, "heads": 4, "width": 128}
    config = transformers.GPT2Config(vocab_size=sizes["vocab"], n_positions=sizes["context"], n_layer=sizes["layers"],
                                     n_head=sizes["heads"], n_embd=sizes["width"], bos_token_id=0, eos_token_id=0)
    torch.manual_seed(0)
    ref = gpt2_weights_of(transformers.GPT2LMHeadModel(config), sizes["layers"])
    torch.manual_seed(1)
    ours = netc.compile_file(EXAMPLES / "gpt2.net", defines=sizes).to_torch("GPT2").state_dict()
    assert set(ours) == set(ref)
    for k, want in ref.items():
        got = ours[k]
        if want.std() == 0:  # biases 0, layernorm gains 1 and shifts 0
            assert torch.equal(got, want), k
        else:
            assert abs(got.std() / want.std() - 1) < 0.1 and abs(got.mean()) < 0.1 * want.std(), k
    assert abs(ref["gpt2_block.0.linear_1.weight"].std() - 0.02 / 6 ** 0.5) < 1e-3  # the scaled one, checked
