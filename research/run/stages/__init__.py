"""The stages of a run, one function each. Each runs the project's existing CLI as a subprocess (so every
MindSpore/MindFormers context lives in its own process, as under scripts/finetune.sh before) and is
recorded in ``run.json`` by :func:`research.rundir.manifest.run_stage`, which skips a stage whose outputs
are complete and whose inputs did not change.

Stages of ``finetune`` (:func:`research.run.stages.pipeline.finetune`): data -> preprocess -> mindrecord
(``data``) -> base (``base``) -> train -> [bags -> bag_NN ... (``--bags``)] (``train``) -> eval (per grader,
see :func:`research.run.stages.evaluate.eval_plan`) -> report (``evaluate``). Before them,
:func:`research.run.stages.common.config_problems` checks the YAML. ``eval`` (scripts/eval.sh) runs
evaluation steps on a finished run. What every stage shares (the :class:`~research.run.stages.common.Run`,
running a command, its environment and errors) is in ``common``.
"""
