"""Training callbacks registered with MindFormers, so YAML ``callbacks:`` lists can name them."""
import json
import math
import os
import resource
import time
from pathlib import Path

import mindspore as ms
from mindspore.train.callback import Callback
from mindformers.core.callback.callback import CheckpointMonitor
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister

from preprocess.atomic import write_json_atomic
from research.llama3.train.param_count import count_parameters
from research.rundir.layout import RunLayout


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or Inf; the run stopped before any checkpoint of that step."""




def step_loss(cb_params) -> float:
    """The loss of the step just run (first of the train cell's outputs)."""
    outputs = cb_params.net_outputs
    return float((outputs[0] if isinstance(outputs, (tuple, list)) else outputs).asnumpy())


def model_network(cb_params):
    """The model inside the training wrapper (as MindFormers' CheckpointMonitor unwraps it), so that
    ``trainable_params()`` are the LoRA weights and not also the optimizer's moments."""
    network = cb_params.network
    return network.network if getattr(network, "optimizer", None) is not None else network


def peak_memory_mb() -> dict:
    """Peak memory of this process so far: host RSS (MB), plus device memory (MB) off CPU."""
    peak = {"peak_host_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    if ms.get_context("device_target") != "CPU":
        peak["peak_device_mb"] = round(ms.runtime.max_memory_allocated() / 2 ** 20, 1)
    return peak


def network_parameters(network):
    """``(element count, trainable)`` of each parameter of a MindSpore cell, for
    :func:`research.llama3.train.param_count.count_parameters`."""
    trainable = {id(p) for p in network.trainable_params()}
    return ((math.prod(p.shape), id(p) in trainable) for p in network.get_parameters())


@MindFormerRegister.register(MindFormerModuleType.CALLBACK)
class LossJsonlMonitor(Callback):
    """Append one JSON line per training step: step, loss, lr, global_norm, elapsed_s, tokens/s,
    peak host (and device) memory in MB.

    ``step`` counts from the start of training: MindFormers restarts MindSpore's ``cur_step_num`` at 1
    in a resumed run, so the steps already done come in as ``initial_step``. Also writes ``params.json``
    (trainable/total parameter counts) beside the log when training begins, and raises
    :class:`NonFiniteLossError` when the loss is NaN or Inf (after logging it). MindFormers runs
    ``CheckpointMonitor`` before any other callback, so it is :class:`FiniteCheckpointMonitor` that
    keeps that step out of the checkpoints.

    Args:
        path: JSONL file to append to (its directory is created).
        tokens_per_step: global batch size x seq_length, for the throughput column.
        initial_step: steps done before this process started (a resumed run's checkpoint step).
    """

    def __init__(self, path: str = "loss.jsonl", tokens_per_step: int = 0, initial_step: int = 0):
        super().__init__()
        self.path = path
        self.tokens_per_step = tokens_per_step
        self.initial_step = initial_step
        self._t0 = None
        self._t_last = None
        self._step_last = initial_step

    def on_train_begin(self, run_context):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        counts = count_parameters(network_parameters(model_network(run_context.original_args())))
        write_json_atomic(RunLayout(Path(self.path).resolve().parent).params, counts)
        print(f"trainable params: {counts['trainable']:,} of {counts['total']:,} "
              f"(ratio to the base model {counts['ratio']:.6f})", flush=True)
        self._t0 = self._t_last = time.time()

    def on_train_step_end(self, run_context):
        params = run_context.original_args()
        outputs = params.net_outputs
        loss = step_loss(params)
        now = time.time()
        step = self.initial_step + int(params.cur_step_num)
        # in sink mode this runs once per sink_size steps: time per step and tokens over all of them
        steps_run = max(step - self._step_last, 1)
        record = {"step": step, "loss": loss, "elapsed_s": round(now - self._t0, 3),
                  "step_s": round((now - self._t_last) / steps_run, 3)}
        # MFTrainOneStepCell's outputs: loss, overflow, loss_scale, lr, global_norm
        if isinstance(outputs, (tuple, list)) and len(outputs) >= 5:
            record["lr"] = float(outputs[3].asnumpy())
            record["global_norm"] = float(outputs[4].asnumpy().reshape(-1)[0])
        if self.tokens_per_step:
            record["tokens_per_s"] = round(steps_run * self.tokens_per_step / max(now - self._t_last, 1e-9), 1)
        record.update(peak_memory_mb())
        self._t_last, self._step_last = now, step
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if not math.isfinite(loss):
            run_context.request_stop()
            raise NonFiniteLossError(f"loss became {loss} at step {record['step']}; stopping. The last good "
                                     f"checkpoint is the newest one saved before this step.")


# Registered under MindFormers' own name, so a YAML's `type: CheckpointMonitor` builds this class
# and MindFormers still hands it the arguments it gives that type only (resume step, global batch).
@MindFormerRegister.register(MindFormerModuleType.CALLBACK, alias="CheckpointMonitor")
class FiniteCheckpointMonitor(CheckpointMonitor):
    """MindFormers' ``CheckpointMonitor`` (same arguments, same files) that never saves a step whose loss
    is NaN or Inf, neither at its ``save_checkpoint_steps`` nor at the end of training.

    Why: MindFormers sorts ``CheckpointMonitor`` ahead of every other callback
    (``BaseTrainer.sort_callbacks``), so it would save the bad step before
    :class:`LossJsonlMonitor` can stop the run; with this guard the newest checkpoint is always the
    last good one. Importing this module makes it what ``type: CheckpointMonitor`` builds.
    """

    def step_end(self, run_context):
        if math.isfinite(step_loss(run_context.original_args())):
            super().step_end(run_context)

    def end(self, run_context):
        if math.isfinite(step_loss(run_context.original_args())):
            super().end(run_context)


@MindFormerRegister.register(MindFormerModuleType.CALLBACK)
class EpochLoraCheckpoint(Callback):
    """Save the trainable (LoRA) parameters at the end of every epoch: ``<directory>/lora_epoch<E>.ckpt``.

    MindFormers' ``CheckpointMonitor`` saves every N steps (full state and, with
    ``save_trainable_params``, LoRA only); this adds the per-epoch LoRA file. Epochs are counted
    from the global step and the dataset size, so they stay right in a resumed run and in sink mode
    (where MindSpore's own "epoch" is ``sink_size`` steps). ``mindspore.save_checkpoint`` writes
    ``*.tmp`` and renames it, so a file under its final name is always complete.

    Args:
        directory: where the files go (created); one directory per rank.
        steps_per_epoch: batches in one epoch of the training dataset.
        initial_step: steps done before this process started (a resumed run's checkpoint step).
    """

    def __init__(self, directory: str, steps_per_epoch: int, initial_step: int = 0):
        super().__init__()
        self.directory = directory
        self.steps_per_epoch = steps_per_epoch
        self.initial_step = initial_step
        self._last_step = initial_step

    def on_train_step_end(self, run_context):
        params = run_context.original_args()
        if not math.isfinite(step_loss(params)):
            return
        step = self.initial_step + int(params.cur_step_num)
        # In sink mode this runs once per sink, so an epoch end can fall inside the steps just run.
        last, self._last_step = self._last_step, step
        epoch = step // self.steps_per_epoch
        if epoch == last // self.steps_per_epoch:
            return
        os.makedirs(self.directory, exist_ok=True)
        ms.save_checkpoint(model_network(params).trainable_params(),
                           os.path.join(self.directory, f"lora_epoch{epoch}.ckpt"), append_dict={"step_num": step})
