"""Training records: conversations -> MindRecord (mirrors MindFormers' llama_preprocess.py)."""
