"""Export of a trained model for inference (MindIR)."""
