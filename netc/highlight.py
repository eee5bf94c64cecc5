"""A Pygments lexer for .net specs, registered as the ``netc`` lexer (aliases ``net``,
``netc``; files ``*.net``) through the ``pygments.lexers`` entry point in pyproject.toml, so
``pygmentize -l netc``, Sphinx and MkDocs (```netc fences) highlight specs.

The tokens follow specs/grammar.lark: keywords, ``true``/``false``, the declared names of
blocks, models, cells and pairs, calls and pipeline stages, types, numbers, strings,
comments, operators and punctuation. Anything else is an error token (the tests check that
no example, standard-library file or documented spec has one)."""

from __future__ import annotations

from typing import ClassVar

from pygments.lexer import RegexLexer, bygroups, words
from pygments.token import Comment, Keyword, Name, Number, Operator, Punctuation, String, Whitespace

__all__ = ["NetcLexer"]

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"


class NetcLexer(RegexLexer):
    name = "netc"
    aliases = ("netc", "net")
    filenames = ("*.net",)
    mimetypes = ("text/x-netc",)

    tokens: ClassVar[dict] = {
        "root": [
            (r"[ \t\f\r\n]+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r'"[^"\\\n]*(?:\\.[^"\\\n]*)*"', String.Double),
            (rf"\b(block|model|cell|pair)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (rf"\b(const|let|param)(\s+)({_NAME})", bygroups(Keyword.Declaration, Whitespace, Name.Variable)),
            (r"\bimport\b", Keyword.Namespace),
            (words(("defaults", "return", "if", "then", "else"), suffix=r"\b"), Keyword),
            (words(("and", "or", "not"), suffix=r"\b"), Operator.Word),
            (words(("true", "false"), suffix=r"\b"), Keyword.Constant),
            (words(("int", "float", "bool", "str", "tuple"), suffix=r"\b"), Keyword.Type),
            (rf"(->)(\s*)({_NAME})", bygroups(Operator, Whitespace, Name.Function)),  # a pipeline stage
            (rf"({_NAME})(\s*)(?=\()", bygroups(Name.Function, Whitespace)),  # a call
            (_NAME, Name),
            (r"[0-9]+\.[0-9]*(?:[eE][-+]?[0-9]+)?|[0-9]+[eE][-+]?[0-9]+|\.[0-9]+(?:[eE][-+]?[0-9]+)?", Number.Float),
            (r"[0-9]+", Number.Integer),
            (r"->", Operator),
            (r"\.\.\.", Punctuation),
            (r"==|!=|<=|>=|//|[-+*/%@<>=]", Operator),
            (r"[()\[\]{},:]", Punctuation),
        ],
    }
