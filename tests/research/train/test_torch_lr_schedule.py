"""research.llama3.train.lr_schedule against MindFormers' own schedule cells, step by step."""
import pytest

from research.llama3.train.lr_schedule import mindformers_lr

pytestmark = pytest.mark.unit

CASES = [
    {"type": "CosineWithWarmUpLR", "learning_rate": 2.0e-3, "lr_end": 0.0, "warmup_ratio": 0.1, "total_steps": -1},
    {"type": "CosineWithWarmUpLR", "learning_rate": 1.0e-4, "lr_end": 1.0e-6, "warmup_steps": 3,
     "warmup_lr_init": 1.0e-5, "total_steps": 12, "decay_steps": 10},
    {"type": "LinearWithWarmUpLR", "learning_rate": 5.0e-4, "warmup_ratio": 0.25, "total_steps": -1},
]
TOTAL = 12


@pytest.mark.parametrize("schedule", CASES, ids=[c["type"] + str(i) for i, c in enumerate(CASES)])
def test_matches_mindformers(schedule, conv_ms_cpu):
    import mindspore as ms
    from mindformers.core.lr import build_lr

    # MindFormers' trainer replaces total_steps -1 by the run's steps before building the cell.
    cell = build_lr({**schedule, "total_steps": TOTAL if schedule["total_steps"] == -1 else schedule["total_steps"]})
    ours = mindformers_lr(schedule, TOTAL)
    expected = [float(cell(ms.Tensor(step, ms.int32)).asnumpy()) for step in range(TOTAL + 1)]
    assert [ours(step) for step in range(TOTAL + 1)] == pytest.approx(expected, rel=1e-5, abs=1e-12)  # MindFormers computes in float32


def test_unsupported_schedule_is_named():
    with pytest.raises(ValueError, match="PolynomialWithWarmUpLR"):
        mindformers_lr({"type": "PolynomialWithWarmUpLR", "learning_rate": 1e-3}, 10)
    with pytest.raises(ValueError, match="warmup_ratio"):
        mindformers_lr({"type": "CosineWithWarmUpLR", "learning_rate": 1e-3, "warmup_ratio": 1.5}, 10)
