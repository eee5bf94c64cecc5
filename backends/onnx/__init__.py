"""The ONNX backend: graph IR to an ``onnx.ModelProto`` built with ``onnx.helper``.

``lowerings/`` holds one lowering per op, registered by op name in one table
(:data:`table.LOWERINGS`); ops that cannot be exported are listed with the reason in
:data:`table.UNSUPPORTED`. ``emit.py`` walks a model's IR and builds the model.
"""
