"""The NumPy backend: the graph IR lowered to a standalone NumPy reference program.

``kernels/`` holds one reference kernel per op (plain functions of arrays, copied verbatim
into the generated program); ``emit.py`` writes the program: the kernels a model uses,
``load_weights`` and one ``forward`` function per model.
"""
