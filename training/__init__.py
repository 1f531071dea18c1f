"""Training: SFT and reward models, evaluation, serving.

Importing this package is cheap: torch, transformers and TRL load only with the submodules that
need them (training.reward, training.sft, training.serving, ...), never with `import training`.

Nothing here may reach the Hugging Face Hub: every base model is a local folder, and every load
passes local_files_only. The variables below make any load that forgot fail fast instead of
waiting on the network; huggingface_hub reads them once, when it is first imported.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
