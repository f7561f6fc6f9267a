"""Training callbacks registered with MindFormers, so YAML ``callbacks:`` lists can name them."""
import json
import math
import os
import time

from mindspore.train.callback import Callback
from mindformers.tools.register import MindFormerModuleType, MindFormerRegister


def count_parameters(network) -> dict:
    """Return ``{"trainable", "base", "total", "ratio"}`` parameter counts of a MindSpore cell.

    ``base`` = total - trainable (the frozen model); ``ratio`` = trainable / base, the contest's
    low-parameter ratio (data README: score uses 1 - trainable/8,030M, the base model's size).
    Same definitions as ``research.llama3.param_count.lora_param_counts``.
    """
    total = sum(math.prod(p.shape) for p in network.get_parameters())
    trainable = sum(math.prod(p.shape) for p in network.trainable_params())
    base = total - trainable
    return {"trainable": trainable, "base": base, "total": total, "ratio": trainable / base if base else 0.0}


@MindFormerRegister.register(MindFormerModuleType.CALLBACK)
class LossJsonlMonitor(Callback):
    """Append one JSON line per training step: step, loss, lr, global_norm, elapsed_s, tokens/s.

    Also writes ``params.json`` (trainable/total parameter counts) beside the log when training
    begins, and stops the run with a clear error when the loss stops being finite.

    Args:
        path: JSONL file to append to (its directory is created).
        tokens_per_step: global batch size x seq_length, for the throughput column.
    """

    def __init__(self, path: str = "loss.jsonl", tokens_per_step: int = 0):
        super().__init__()
        self.path = path
        self.tokens_per_step = tokens_per_step
        self._t0 = None
        self._t_last = None

    def on_train_begin(self, run_context):
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        network = run_context.original_args().network
        counts = count_parameters(network.network if hasattr(network, "optimizer") else network)
        with open(os.path.join(os.path.dirname(os.path.abspath(self.path)), "params.json"), "w",
                  encoding="utf-8") as f:
            json.dump(counts, f, indent=2)
        print(f"trainable params: {counts['trainable']:,} of {counts['total']:,} "
              f"(ratio to the base model {counts['ratio']:.6f})", flush=True)
        self._t0 = self._t_last = time.time()

    def on_train_step_end(self, run_context):
        params = run_context.original_args()
        outputs = params.net_outputs
        outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
        loss = float(outputs[0].asnumpy())
        now = time.time()
        record = {"step": int(params.cur_step_num), "loss": loss, "elapsed_s": round(now - self._t0, 3),
                  "step_s": round(now - self._t_last, 3)}
        if len(outputs) >= 5:  # MFTrainOneStepCell: loss, overflow, loss_scale, lr, global_norm
            record["lr"] = float(outputs[3].asnumpy())
            record["global_norm"] = float(outputs[4].asnumpy().reshape(-1)[0])
        if self.tokens_per_step:
            record["tokens_per_s"] = round(self.tokens_per_step / max(now - self._t_last, 1e-9), 1)
        self._t_last = now
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        if not math.isfinite(loss):
            run_context.request_stop()
            raise RuntimeError(f"loss became {loss} at step {record['step']}; stopping. The last good "
                               f"checkpoint is the newest one saved before this step.")
