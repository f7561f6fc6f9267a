"""Data preparation for LoRA fine-tuning on the 2024 Ascend contest (topic 2) math data.

Modules, one job each:
    readers   read and validate JSONL / JSON files of five formats (line-numbered rejections)
    logic     Tianchi sub-question records and their plain / thinking training texts
    dedup     normalize problem text, exact keys and MinHash/LSH near-duplicates
    classify  rule-based category of a problem (contest regexes, english, logic, ...)
    cot       re-derive each reference answer and write a verified chain of thought
    recipes   the CoT styles' recipes: classic (the re-derivation itself), steps, digits
    styles    the one registry of target styles (CoT and target style: renderer, checker, fallback)
    rounding  per-category rounding of verified answers in training targets
    pot       the program-of-thought expression language and its safe evaluator
    pot_targets  verified PoT training targets (``target_style: pot``)
    teacher   cached, concurrent teacher rationales from an OpenAI-compatible endpoint
    split     stratified, deterministic hold-out split
    quotas    per-category quotas with upsampling, contamination keys
    config    settings from a YAML file and command-line overrides
    synthesize synthetic corpus in the contest's exact formats (``python -m preprocess.synthesize``)
    pipeline  all of the above end to end (``python -m preprocess``), writing the fastchat
              conversations.json that ``research.llama3.records.mindrecord`` turns into MindRecord
    templates prompt templates shared by training and evaluation
"""
