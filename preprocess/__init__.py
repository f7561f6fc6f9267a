"""Data preparation for LoRA fine-tuning on the 2024 Ascend contest (topic 2) math data.

Modules, one job each:
    readers   read and validate JSONL files (line-numbered rejections)
    dedup     normalize problem text and drop exact duplicates
    classify  rule-based category of a problem (contest regexes, english, logic, ...)
    cot       re-derive each reference answer and write a verified chain of thought
    split     stratified, deterministic hold-out split
    generate  synthetic corpus in the contest's exact formats (``python -m preprocess.generate``)
    pipeline  all of the above end to end (``python -m preprocess``), writing the fastchat
              conversations.json that ``preprocess.mindrecord`` turns into MindRecord
    templates prompt templates shared by training and evaluation
"""
