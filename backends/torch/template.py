"""What the torch emitter renders a scope to before it writes text: a :class:`Template` of
``__init__`` and ``forward`` lines whose sizes are numbered :class:`Slot` s, and the
:class:`ClassDef` that the instances sharing a template share. ``emit.py`` builds them;
``write.py`` turns them into source."""

from __future__ import annotations

from dataclasses import dataclass, field

from .scopes import Scope


@dataclass(frozen=True)
class Slot:
    index: int


@dataclass(frozen=True)
class ChildArgs:
    """Where a child's constructor arguments go, resolved once its class is known."""

    scope: Scope


@dataclass(frozen=True)
class EpilogueInit:
    """An ``__init__`` line that stores the activation a block instance applies to one of its
    results (an epilogue, fused in from the op after it): ``self.activation = ...``; none
    where no instance of the class has one."""

    slot: Slot
    attr: str


@dataclass(frozen=True)
class EpilogueApply:
    """A result ``var`` with its epilogue applied, ``self.activation(var)``, where the class has one."""

    slot: Slot
    attr: str
    var: str


@dataclass
class Template:
    init: list[list] = field(default_factory=list)  # lines of str | Slot | ChildArgs parts
    forward: list[tuple[list, str]] = field(default_factory=list)  # (parts, comment)
    args: list[str] = field(default_factory=list)  # forward parameter names
    values: list = field(default_factory=list)  # own slot values
    labels: list = field(default_factory=list)  # (label, value) of each own slot
    mentions: list = field(default_factory=list)  # the block names each own slot's op mentions
    exprs: list = field(default_factory=list)  # the size expressions each own slot's op was given
    children: list[Scope] = field(default_factory=list)
    helpers: set[str] = field(default_factory=set)
    epilogues: set[int] = field(default_factory=set)  # the own slots that hold an epilogue module (or None)

    def key(self, classes: dict) -> tuple:
        def part(p):
            if isinstance(p, Slot):
                return "\0"
            if isinstance(p, ChildArgs):
                return ("child", classes[id(p.scope)].name)
            return p

        init = tuple(tuple(part(p) for p in line) for line in self.init)
        fwd = tuple((tuple(part(p) for p in line), comment.split("  ")[-1]) for line, comment in self.forward)
        return (init, fwd, tuple(self.args))


@dataclass
class ClassDef:
    name: str
    doc: str
    instances: list[Scope] = field(default_factory=list)
    params: list[tuple[int, str]] = field(default_factory=list)  # (slot index, name)
    derived: dict = field(default_factory=dict)  # slot index -> the spec's size expression (an AST) giving it
    vectors: dict = field(default_factory=dict)  # id(scope) -> full slot values

    def args(self) -> list[tuple[int, str]]:
        """The constructor arguments: (first slot, name), one per distinct name."""
        seen: dict[str, int] = {}
        for i, name in self.params:
            seen.setdefault(name, i)
        return [(i, name) for name, i in seen.items()]
