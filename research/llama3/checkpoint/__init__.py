"""Weights: GGUF/HF -> MindFormers conversion, MindFormers -> HF (to_hf), LoRA merges, per-rank merges,
PEFT adapters, checkpoint file I/O and the name mapping between MindFormers and HF."""
