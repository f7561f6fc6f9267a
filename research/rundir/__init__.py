"""The run directory: its ``logs/<run-id>/`` layout and its ``run.json`` manifest. A leaf the stages
(training, evaluation report) import without importing the orchestrator, research.run."""
