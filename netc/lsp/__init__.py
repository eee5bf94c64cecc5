"""The language server, ``netc lsp`` (see docs/editors.md).

``analysis``: one compilation of an editor's buffer and what the features ask of it;
``names``: where each name is declared and used; ``hover``: hover text and inlay hints;
``complete``: completion; ``documents``: the documents held, and spans and diagnostics in
LSP terms; ``server``: the pygls server and its handlers. Only ``documents`` and ``server``
import pygls, and ``netc.cli`` imports this package only to run ``netc lsp``.
"""
