"""Run by tests/test_mlflow_api.py in the separate mlflow virtualenv (.venv-mlflow).

A Hugging Face ``Trainer`` with its MLflow callback (``report_to=["mlflow"]``)
trains a tiny BERT built from a config (random weights, nothing downloaded)
for a few steps against ``opsloop server``. Prints what the run holds.
"""

from __future__ import annotations

import json
import os
import tempfile

os.environ.update(
    HF_HUB_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    MLFLOW_EXPERIMENT_NAME="mlf-hf",
    HF_MLFLOW_LOG_ARTIFACTS="0",
    TOKENIZERS_PARALLELISM="false",
)

import torch
from mlflow import MlflowClient
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    Trainer,
    TrainingArguments,
)

torch.manual_seed(0)
config = BertConfig(
    vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
    intermediate_size=32, max_position_embeddings=16, num_labels=2,
)  # fmt: skip
model = BertForSequenceClassification(config)


class Data(torch.utils.data.Dataset):  # type: ignore[type-arg]
    def __len__(self) -> int:
        return 32

    def __getitem__(self, i: int) -> dict:
        g = torch.Generator().manual_seed(i)
        return {
            "input_ids": torch.randint(0, 64, (8,), generator=g),
            "attention_mask": torch.ones(8, dtype=torch.long),
            "labels": torch.tensor(i % 2),
        }


args = TrainingArguments(
    output_dir=tempfile.mkdtemp(), per_device_train_batch_size=8, num_train_epochs=2,
    logging_steps=1, report_to=["mlflow"], save_strategy="no", use_cpu=True,
    run_name="hf-tiny", disable_tqdm=True,
)  # fmt: skip
Trainer(model=model, args=args, train_dataset=Data()).train()

c = MlflowClient()
exp = c.get_experiment_by_name("mlf-hf")
runs = c.search_runs([exp.experiment_id])
run = runs[0]
print(
    json.dumps(
        {
            "n_runs": len(runs),
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "n_params": len(run.data.params),
            "learning_rate_param": run.data.params.get("learning_rate"),
            "metrics": sorted(run.data.metrics),
            "loss_steps": [m.step for m in c.get_metric_history(run.info.run_id, "loss")],
        }
    )
)
