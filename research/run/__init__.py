"""The pipeline runner (``python -m research.run``) that scripts/finetune.sh and scripts/eval.sh call: option
rules (settings), the base model from a file (base_file), the stages (the stages/ package: one function per
stage), the base-eval cache and the training progress bar. The run directory's layout and manifest live in
research.rundir, which the stages import."""
