"""Evaluation tests: a saved tiny random transformers Llama."""
import pytest


@pytest.fixture
def tiny_hf_model_dir(tmp_path):
    """A saved tiny random transformers Llama + word-level tokenizer (tests/eval/test_eval_generate.py's)."""
    from tests.eval.test_eval_generate import make_model, make_tokenizer

    tokenizer = make_tokenizer()
    model_dir = tmp_path / "tiny_hf_model"
    make_model(len(tokenizer)).save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    return model_dir
