"""Device build kits: what a run leaves for a target that cannot build its engines here.

``write.py`` writes a kit (``RUN/kits/<target>-<precision>/``: the target's part, the evaluation
set of ``evalset.py`` and a manifest) and ``seal.py`` the run's own record of it; on the device,
``device_run.py`` runs the kit's evaluation set (``dense-edge kit validate``) and writes the
device report whose schema ``device_report.py`` defines, reads and checks (``report merge``).
What a kit holds for one target, and how that target runs it, is the target's own behaviour
(``Target.write_kit``, ``read_kit``, ``kit_run``; for TensorRT ``targets/tensorrt/kit.py``).
"""
