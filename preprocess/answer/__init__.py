"""The math-answer core that preprocessing and evaluation share (eval imports it; it imports nothing of
the suite but itself): contest number arithmetic and float tolerance (numeric), ``\\boxed{}`` and GSM8K
final answers (boxed), the answer a generation gives and number parsing (extract), and the
program-of-thought language with its safe evaluator (pot)."""
