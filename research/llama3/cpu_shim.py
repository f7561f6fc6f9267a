"""CPU stand-in for MindFormers' overflow check, so MindFormers' own training loop runs on CPU.

Why: ``MFTrainOneStepCell`` (MindFormers 1.9) inherits MindSpore's
``TrainOneStepWithLossScaleCell.get_overflow_status``, which on any non-GPU target calls the Ascend
ops ``NPUGetFloatStatusV2``/``NPUClearFloatStatusV2``. Those have no CPU kernels, so graph
compilation fails with "Unsupported op [NPUGetFloatStatusV2] on CPU". On CPU we replace the check by
the same semantics computed with portable ops: overflow = some gradient is not finite.

The patch is applied only when the MindSpore device target is CPU; Ascend runs are untouched.
"""
import mindspore as ms
from mindspore import ops

_all_finite = ops.MultitypeFuncGraph("_all_finite")


@_all_finite.register("Tensor")
def _tensor_all_finite(grad):
    return ops.isfinite(grad).all()


def _cpu_overflow_status(self, status, compute_output):  # pylint: disable=unused-argument
    flags = self.hyper_map(_all_finite, compute_output)
    return ops.logical_not(ops.stack(flags).all())


def apply_if_cpu() -> bool:
    """Patch ``MFTrainOneStepCell.get_overflow_status`` when the device target is CPU.

    Call after the MindSpore context is set (``build_context``). Returns True when patched.
    """
    if ms.get_context("device_target") != "CPU":
        return False
    from mindformers.wrapper.wrapper import MFTrainOneStepCell
    MFTrainOneStepCell.get_overflow_status = _cpu_overflow_status
    return True
