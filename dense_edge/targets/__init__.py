"""Targets: one sub-package per runtime (onnxruntime, openvino, tensorrt), each declaring one
:class:`~dense_edge.targets.base.Target` in its ``target.py`` (how to build an engine, how to load
its runner, what ``doctor`` says about it), listed once in :mod:`dense_edge.targets.registry`.
``pytorch/`` holds the float reference runner. Importing this package imports no runtime; each
target imports its runtime when used."""
