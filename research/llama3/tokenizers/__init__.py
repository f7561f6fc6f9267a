"""Tokenizers: the GGUF-embedded one (SmolLM2), Meta's Llama 3 tiktoken file, and the YAML-driven
builder every stage uses (tokenizer)."""
