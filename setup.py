"""Install the suite's packages (preprocess, research, eval, mathlora) and its one command, ``mathlora``."""
from setuptools import find_packages, setup

setup(
    name="mathlora-suite",
    version="0.1.0",
    description="MindSpore/MindFormers LoRA fine-tuning suite for math and logic reasoning LLMs",
    packages=find_packages(include=["preprocess", "preprocess.*", "eval", "eval.*", "research", "research.*",
                                    "mathlora", "mathlora.*"]),
    # `mathlora <command>`: every CLI behind one command (mathlora/__main__.py holds the table).
    entry_points={"console_scripts": ["mathlora = mathlora.__main__:main"]},
    python_requires=">=3.10",
    install_requires=[
        # MindFormers 2.x needs packages that are not on PyPI; 1.9.0 pins mindspore~=2.9.0.
        "mindspore==2.9.0",
        "mindformers==1.9.0",
        "numpy<2",
        "sympy",
        "pandas",
        "PyYAML",
        "tqdm",
        "matplotlib",
        "gguf>=0.10",
        "tiktoken",  # the Llama 3 tokenizer (research/llama3/tokenizers/llama3_tokenizer.py)
        "datasketch==1.6.5",  # MinHash/LSH near-duplicate detection
        "esdk-obs-python==3.26.6",  # Huawei Cloud OBS uploads (research/obs)
        "transformers==4.57.1",
        # teacher rationales (preprocess/teacher.py); a release of transformers 4.57.1's time, whose
        # `transformers serve` (the teacher server in tests) imports openai's types.
        "openai==2.6.1",
        # The CPU wheel; with no torch pinned pip would pull a CUDA build and several GB of packages.
        "torch==2.13.0",
        # two independent solvers that must agree on generated logic puzzles (preprocess/augment_logic.py)
        "python-constraint2==2.9.0",
        "clingo==5.8.3",
    ],
    extras_require={
        # the PyTorch + PEFT training path (research/llama3/train/torch_finetune.py) and adapter conversion;
        # bitsandbytes: its --quantization nf4|int8 (QLoRA), whose CPU backend the tests run
        "torch": ["peft==0.21.2", "bitsandbytes==0.50.2"],
        # accelerate: transformers' from_pretrained(..., gguf_file=...) needs it (conversion parity test);
        # moto: a local S3-compatible server for the OBS tests;
        # fastapi + uvicorn: `transformers serve`, the real OpenAI-compatible teacher server in
        # tests/preprocess/test_teacher_real_server.py (transformers[serving] without its unpinned extras).
        "test": ["pytest", "accelerate", "peft==0.21.2", "bitsandbytes==0.50.2", "moto[server]==5.2.5",
                 "fastapi==0.120.0", "uvicorn==0.38.0"],
    },
)
