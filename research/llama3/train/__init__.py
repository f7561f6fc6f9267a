"""Training: the MindFormers entry (finetune) and the PyTorch + PEFT one (torch_finetune), their
callbacks, learning-rate schedule, resume, CPU shim, parameter count and the Ascend dry run."""
