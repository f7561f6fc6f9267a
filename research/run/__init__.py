"""The pipeline runner (``python -m research.run``) that scripts/finetune.sh and scripts/eval.sh call: option
rules (settings), one function per stage (stages), the base-eval cache and the training progress bar. The
run directory's layout and manifest live in research.rundir, which the stages import."""
