"""CPU stand-in for MindFormers' overflow check, so MindFormers' own training loop runs on CPU.

Why: ``MFTrainOneStepCell`` (MindFormers 1.9) inherits MindSpore's
``TrainOneStepWithLossScaleCell.get_overflow_status``, which on any non-GPU target calls the Ascend
ops ``NPUGetFloatStatusV2``/``NPUClearFloatStatusV2``. Those have no CPU kernels, so graph
compilation fails with "Unsupported op [NPUGetFloatStatusV2] on CPU". On CPU we replace the check by
the same semantics computed with portable ops: overflow = some gradient is not finite.

Second, MindFormers synchronises ranks with ``mindspore.communication.comm_func.barrier`` (before
loading or saving checkpoints); its ``Barrier`` op has no CPU kernel either ("Unsupported op [Barrier]
on CPU"). On CPU a barrier is an all-reduce of one scalar over the world group, which every rank must
enter before any can leave, the same guarantee.

The patches are applied only when the MindSpore device target is CPU; Ascend runs are untouched.
"""
import importlib

import mindspore as ms
from mindspore import ops

_all_finite = ops.MultitypeFuncGraph("_all_finite")


@_all_finite.register("Tensor")
def _tensor_all_finite(grad):
    return ops.isfinite(grad).all()


def _cpu_overflow_status(self, status, compute_output):  # pylint: disable=unused-argument
    flags = self.hyper_map(_all_finite, compute_output)
    return ops.logical_not(ops.stack(flags).all())


def _cpu_barrier(group=None):
    """Block until every rank of ``group`` (default: the world) has called it (AllReduce of one scalar)."""
    from mindspore.communication import GlobalComm

    ops.AllReduce(group=group or GlobalComm.WORLD_COMM_GROUP)(ms.Tensor([1.0], ms.float32)).asnumpy()


# Modules that bound ``barrier`` by name at import time (``from ... comm_func import barrier``).
_BARRIER_USERS = ("mindspore.communication.comm_func", "mindformers.trainer.utils",
                  "mindformers.utils.load_checkpoint_utils", "mindformers.core.callback.callback")


def apply_if_cpu() -> bool:
    """Patch ``MFTrainOneStepCell.get_overflow_status`` and MindFormers' barriers when the target is CPU.

    Call after the MindSpore context is set (``build_context``). Returns True when patched.
    """
    if ms.get_context("device_target") != "CPU":
        return False
    from mindformers.wrapper.wrapper import MFTrainOneStepCell
    MFTrainOneStepCell.get_overflow_status = _cpu_overflow_status
    for name in _BARRIER_USERS:
        module = importlib.import_module(name)
        if hasattr(module, "barrier"):
            module.barrier = _cpu_barrier
    return True
