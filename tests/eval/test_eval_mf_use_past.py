"""The MindFormers incremental path (use_past, Ascend): what can be checked without an NPU.

Its pieces are checked against MindFormers' own code: the generate() arguments build the
GenerationConfig and logits warpers we mean, the padded batch gives MindFormers' valid lengths,
the returned rows are cut back to the new tokens, and the choice of path and its refusal on CPU.
"""
import json
from pathlib import Path

import numpy as np
import pytest

from eval import math as math_cli
from eval.mf_generate import generation_kwargs, new_tokens, resolve_use_past, right_pad
from eval.sampling import Sampling, top_p_probs
from preprocess.cli import run_main
from research.llama3.config.model_config import read_model_config

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PREDICT_YAML = str(ROOT / "configs/llama3_8b/predict_lora_910b_1p.yaml")
TINY_YAML = str(ROOT / "configs/tiny/finetune_lora_cpu.yaml")


def test_use_past_follows_the_yaml_on_ascend_and_is_refused_elsewhere():
    predict, tiny = read_model_config(PREDICT_YAML), read_model_config(TINY_YAML)
    assert predict["use_past"] is True and not tiny.get("use_past")
    assert resolve_use_past(predict, None, "Ascend") is True
    assert resolve_use_past(predict, None, "CPU") is False  # the predict YAML still runs on CPU
    assert resolve_use_past(tiny, None, "Ascend") is False
    assert resolve_use_past(tiny, True, "Ascend") is True
    assert resolve_use_past(predict, False, "Ascend") is False
    with pytest.raises(ValueError, match="needs an Ascend device.*CPU.*PagedAttention"):
        resolve_use_past(tiny, True, "CPU")


def test_generate_arguments_build_mindformers_greedy_and_sampling_configs():
    from mindformers.generation import GenerationConfig
    from mindformers.generation.text_generator import GenerationMixin, GenerationMode

    greedy = GenerationConfig(**generation_kwargs(32, None, {2, 7}, 0))
    assert GenerationMixin._get_generation_mode(greedy) == GenerationMode.GREEDY_SEARCH
    assert len(GenerationMixin.get_logits_warper(greedy)) == 0  # plain argmax
    assert (greedy.max_new_tokens, greedy.eos_token_id, greedy.pad_token_id) == (32, [2, 7], 0)

    sampled = GenerationConfig(**generation_kwargs(32, Sampling(0.7, 0.9, 5), {2}, 0))
    assert GenerationMixin._get_generation_mode(sampled) == GenerationMode.SAMPLE
    warpers = GenerationMixin.get_logits_warper(sampled)
    assert [type(w).__name__ for w in warpers] == ["TemperatureLogitsWarper", "TopPLogitsWarper"]  # no top-k
    assert (warpers[0].temperature, warpers[1].top_p) == (pytest.approx(0.7), pytest.approx(0.9))
    no_top_p = GenerationConfig(**generation_kwargs(32, Sampling(0.7, 1.0, 5), {2}, 0))
    assert [type(w).__name__ for w in GenerationMixin.get_logits_warper(no_top_p)] == ["TemperatureLogitsWarper"]


def _mindformers_probs(logits, temperature, top_p):
    """MindFormers' warpers then softmax, as its sampler draws. Their MindSpore implementations
    (process_ms, the default) need SortExt, which has no CPU kernel; the numpy ones compute the
    same per row but TopPLogitsWarper.process_np normalizes over the whole batch (MindFormers 1.9),
    so they are applied one row at a time here."""
    from mindformers.generation import GenerationConfig
    from mindformers.generation.text_generator import GenerationMixin

    config = GenerationConfig(**generation_kwargs(8, Sampling(temperature, top_p, 0), {2}, 0))
    rows = []
    for row in logits.astype(np.float64):
        z = row[None, :]
        for warper in GenerationMixin.get_logits_warper(config):
            z = warper.process_np(z, None)
        rows.append(np.exp(z[0] - z[0].max()) / np.exp(z[0] - z[0].max()).sum())
    return np.array(rows)


def test_mindformers_sampler_distribution_against_ours():
    """Same temperature; top-p differs by one token: MindFormers drops the token whose cumulative
    probability crosses top_p, transformers (and eval.sampling) keep it."""
    logits = np.random.default_rng(0).normal(size=(4, 50)) * 3
    ours, theirs = top_p_probs(logits, 0.7, 1.0), _mindformers_probs(logits, 0.7, 1.0)
    np.testing.assert_allclose(theirs, ours, atol=1e-9)
    ours, theirs = top_p_probs(logits, 0.7, 0.9), _mindformers_probs(logits, 0.7, 0.9)
    for row_ours, row_theirs in zip(ours, theirs):
        kept_ours, kept_theirs = set(np.flatnonzero(row_ours)), set(np.flatnonzero(row_theirs > 1e-12))
        ranked = list(np.argsort(-row_ours, kind="stable"))
        assert kept_theirs < kept_ours and kept_ours - kept_theirs == {ranked[len(kept_ours) - 1]}


def test_right_padded_batch_gives_mindformers_valid_lengths_and_outputs_are_cut():
    from mindformers.generation.text_generator import get_valid_length_each_example

    rows = [[5, 6, 7, 8], [9], [3, 4]]
    batch = right_pad(rows, pad_id=0)
    assert batch.dtype == np.int32 and batch.tolist() == [[5, 6, 7, 8], [9, 0, 0, 0], [3, 4, 0, 0]]
    lengths, longest = get_valid_length_each_example(batch, 0)
    assert lengths.tolist() == [4, 1, 2] and longest == 4
    # MindFormers returns each row as prompt + new tokens, the stopping EOS included.
    assert new_tokens([9, 11, 12, 2], 1, {2}) == [11, 12]
    assert new_tokens(np.array([3, 4, 13, 14, 15], np.int32), 2, {2}) == [13, 14, 15]  # stopped by length
    assert new_tokens([5, 6, 7, 8, 2, 0], 4, {2}) == []


def test_cli_refuses_use_past_on_cpu_before_loading(tmp_path, capsys):
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "a", "category": "power", "problem": "2^3", "answer": "8"}) + "\n")
    code = run_main(math_cli.main, ["--items", str(items), "--config", TINY_YAML, "--load_checkpoint",
                                    str(tmp_path / "not_read.ckpt"), "--backend", "mindformers", "--use_past",
                                    "true", "--output_dir", str(tmp_path / "out")])
    assert code == 2
    assert "use_past (MindFormers' KV cache) needs an Ascend device" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        math_cli.main(["--items", str(items), "--predictions", str(items), "--use_past", "maybe"])
