"""The whole generated file for a spec: model classes, block classes, pair containers."""

from __future__ import annotations

from dataclasses import dataclass

from netc.compiler.limits import gc_paused

from ..emit_kit import Names, file_name, stmt
from .emit import Emitter
from .params import settle

ROLE_METHODS = {"generator": "generate", "discriminator": "discriminate", "encoder": "encode", "decoder": "decode"}


@dataclass(frozen=True)
class TorchSource:
    """A generated file, and the class each model and pair has in it (renamed where its name
    is a keyword, a builtin or a name the file uses itself)."""

    text: str
    classes: dict[str, str]  # model or pair name -> class name


_EMITTED: dict[tuple, tuple[list, TorchSource]] = {}  # files emitted with variants (their dicts kept alive)


@gc_paused
def emit_torch(compiled, names: list[str] | None = None, variants: dict | None = None) -> TorchSource:
    """Standalone PyTorch source for the named models and pairs (default: all of them) of
    ``compiled`` (the driver's ``Compiled``: ``graphs``, ``pairs`` and ``path``), with the
    class of each (and of each model a pair holds). Its first line records the ``netc
    compile`` command that writes the same file.

    ``variants``: model -> {parameter -> the graph with that parameter changed}
    (``compiler.variants.perturbed``); the parameters that only change sizes become the
    class's constructor arguments (``params.settle``), the others are fixed."""
    asked = names
    names = names or list(compiled.graphs) + list(compiled.pairs)
    models = list(dict.fromkeys(m for n in names for m in ([r[1] for r in compiled.pairs[n].roles]
                                                           if n in compiled.pairs else [n])))
    command = f"netc compile {file_name(compiled.path)} {compiled.command_args('torch', asked)}"
    key = None
    if variants is not None and all(m in variants for m in models):
        # the variants are the same dicts for the same files and options (compiler.variants): so is the file
        key = (compiled.path, tuple(names), command, tuple(id(variants[m]) for m in models),
               tuple(tuple((n.id, n.op) for n in compiled.graphs[m].nodes()) for m in models))
        done = _EMITTED.get(key)
        if done is not None and all(a is variants[m] for a, m in zip(done[0], models)):
            return done[1]
    em = Emitter(compiled.path)
    for m in models:  # every block result that takes an epilogue, before any class is made
        em.expect(compiled.graphs[m])
    classes = {}
    for m in models:
        graph, changed = compiled.graphs[m], (variants or {}).get(m) or {}
        free = settle(compiled.path, graph, changed) if changed else []
        classes[m] = em.model(graph)
        for k in free:
            em.model(changed[k], variant=True)
        em.signatures[classes[m]] = (dict(graph.params), set(free))
    pairs = {n: pair_class(compiled, compiled.pairs[n], classes, em) for n in names if n in compiled.pairs}
    text = em.render([code for _, code in pairs.values()], command)
    out = TorchSource(text, classes | {n: cls for n, (cls, _) in pairs.items()})
    if key is not None:
        if len(_EMITTED) > 64:
            _EMITTED.clear()
        _EMITTED[key] = ([variants[m] for m in models], out)
    return out


def torch_source(compiled, names: list[str] | None = None) -> str:
    """Standalone PyTorch source for the named models and pairs (default: all of them)."""
    return emit_torch(compiled, names).text


def pair_class(compiled, pair, classes: dict[str, str], em: Emitter) -> tuple[str, str]:
    """The container class of a pair: its name and its source."""
    (role1, m1), (role2, m2) = pair.roles
    g1, g2 = compiled.graphs[m1], compiled.graphs[m2]
    in1 = [n.id for n in g1.input_nodes()]
    in2 = [n.id for n in g2.input_nodes()]
    outs = [name for name, _ in g1.outputs]
    if outs and all(o in in2 for o in outs):
        out_vars = outs
        fed = {o: o for o in outs}
    else:
        out_vars = [f"{role1}_out" if len(outs) == 1 else f"{role1}_out{i}" for i in range(len(outs))]
        fed = dict(zip(in2, out_vars))
    rest = [i for i in in2 if i not in fed and i not in in1]
    py = arg_names(in1 + in2 + out_vars, em.taken)
    in1, in2, rest, out_vars = ([py[i] for i in ids] for ids in (in1, in2, rest, out_vars))
    fed = {py[k]: py[v] for k, v in fed.items()}
    name = em.class_name(pair.name)
    doc = f"Pair `{pair.name}` of {em.spec}: {role1} `{m1}` feeds {role2} `{m2}`."
    out = [f"class {name}(nn.Module):", f'    """{doc}"""', ""]
    out += stmt("    ", "def __init__(self):")
    out += stmt("        ", "super().__init__()")
    out += stmt("        ", f"self.{role1} = {classes[m1]}()")
    out += stmt("        ", f"self.{role2} = {classes[m2]}()")
    for role, ins in ((role1, in1), (role2, in2)):
        out.append("")
        out += stmt("    ", f"def {ROLE_METHODS[role]}({', '.join(['self'] + ins)}):")
        out += stmt("        ", f"return self.{role}({', '.join(ins)})")
    out.append("")
    out += stmt("    ", f"def forward({', '.join(['self'] + in1 + rest)}):")
    out += stmt("        ", f"{', '.join(out_vars)} = self.{role1}({', '.join(in1)})")
    out += stmt("        ", f"return self.{role2}({', '.join(fed.get(i, i) for i in in2)})")
    return name, "\n".join(out)


def arg_names(ids: list[str], taken: set[str]) -> dict[str, str]:
    """A Python parameter name for each input id: none a keyword, builtin or ``self``."""
    names = Names(taken)
    return {i: names.fresh(i) for i in dict.fromkeys(ids)}
