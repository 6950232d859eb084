"""s1's train/sft.py (simplescaling/s1), as s1-studio exports it.

The same TRL SFTTrainer run: the rows already rendered with the model's chat template (the `text`
column, as s1K_tokenized holds it), TRL's DataCollatorForCompletionOnlyLM with s1's instruction
and response templates and pad token (the loss covers only what follows the assistant marker),
and the hyperparameters on the command line (launch.sh). What this file adds to s1's:

- the step order of s1-studio's own trainer (order.json: one seeded shuffle per epoch, cut into
  global batches, the short last batch completed with the epoch's first examples, as accelerate
  completes it for s1), so a run here and a run in the studio see the same examples at each step;
  `--order_file ""` keeps the Trainer's own sampler instead;
- each step's loss as the mean over the global batch of every example's own token mean (what s1
  gets with one example per GPU and no accumulation), also when gradients are accumulated;
- a callback that appends every step to trainer_log.jsonl in s1-studio's format (step,
  total_steps, loss, lr, grad_norm, epoch, tokens_per_s, elapsed, remaining) and prints it on a
  line starting with S1_STUDIO_STEP, so a watcher that only sees the job's log can follow it.
"""

import json
import logging
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Optional

warnings.filterwarnings("ignore", category=FutureWarning)
logging.basicConfig(level=logging.INFO, format="%(asctime)s - %(levelname)s - %(message)s")

import datasets  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import trl  # noqa: E402


@dataclass
class TrainingConfig:
    model_name: str = field(default="model")
    block_size: int = field(default=32768)
    train_file_path: str = field(default="data/train.parquet")
    # s1's sft.py picks these from the model name (Qwen or Llama); the export writes them out.
    instruction_template: str = field(default="<|im_start|>user")
    response_template: str = field(default="<|im_start|>assistant\n")
    pad_token: str = field(default="<|fim_pad|>")
    order_file: Optional[str] = field(default="order.json")
    log_file: str = field(default="trainer_log.jsonl")


class StudioOrder(torch.utils.data.Sampler):
    """Every epoch's example order from order.json (already a whole number of global batches)."""

    def __init__(self, epochs):
        self.epochs = epochs
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __len__(self):
        return len(self.epochs[0])

    def __iter__(self):
        if self.epoch >= len(self.epochs):
            raise RuntimeError(f"order.json holds {len(self.epochs)} epochs; epoch {self.epoch + 1} was asked for")
        order = self.epochs[self.epoch]
        self.epoch += 1
        return iter(order)


class StudioTrainer(trl.SFTTrainer):
    def __init__(self, *args, studio_order=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.studio_order = studio_order
        self.studio_tokens = 0
        self.studio_loss = 0.0

    def _get_train_sampler(self):
        if self.studio_order is None:
            return super()._get_train_sampler()
        return StudioOrder(self.studio_order)

    def training_step(self, model, inputs, num_items_in_batch=None):
        # The Trainer logs the loss rounded to 4 decimals; the step log keeps it whole.
        loss = super().training_step(model, inputs, num_items_in_batch)
        self.studio_loss += float(loss)
        return loss

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        # Each row's mean token loss, summed and divided by the rows of all the micro-batches of
        # the step on this GPU; the Trainer sums the micro-batches and the GPUs average, so the
        # step's loss is the mean of the examples' means (s1's weighting at any accumulation).
        labels = inputs.pop("labels")
        self.studio_tokens += int(inputs["input_ids"].numel())
        outputs = model(**inputs)
        logits = outputs.logits.float()[:, :-1, :]
        target = labels[:, 1:].to(logits.device)
        per_token = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="none"
        ).view(target.shape)
        keep = target.ne(-100)
        row_mean = (per_token * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
        loss = row_mean.sum() / (labels.size(0) * self.args.gradient_accumulation_steps)
        return (loss, outputs) if return_outputs else loss


class StudioLog(transformers.TrainerCallback):
    """Appends one line per optimizer step to trainer_log.jsonl (s1-studio's StepRecord)."""

    def __init__(self, trainer, path):
        self.trainer = trainer
        self.path = path
        self.lr = 0.0
        self.started = time.time()
        self.step_started = self.started
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.time()
        self.first_step = state.global_step
        if state.is_world_process_zero:
            open(self.path, "w").close()

    def on_step_begin(self, args, state, control, optimizer=None, **kwargs):
        self.step_started = time.time()
        if optimizer is not None:
            self.lr = float(optimizer.param_groups[0]["lr"])

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        # Over every process: the tokens of the step and the mean of the processes' losses.
        sums = torch.tensor(
            [float(self.trainer.studio_tokens), self.trainer.studio_loss, 1.0], dtype=torch.float64, device=args.device
        )
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(sums)
        self.trainer.studio_tokens = 0
        self.trainer.studio_loss = 0.0
        tokens, loss = sums[0].item(), sums[1].item() / sums[2].item()
        if not state.is_world_process_zero:
            return
        now = time.time()
        elapsed = now - self.started
        done = max(state.global_step - self.first_step, 1)
        record = {
            "step": state.global_step,
            "total_steps": state.max_steps,
            "loss": loss,
            "lr": self.lr,
            "grad_norm": float(logs.get("grad_norm", 0.0)),
            "epoch": float(state.epoch or 0.0),
            "tokens_per_s": tokens / max(now - self.step_started, 1e-9),
            "elapsed": elapsed,
            "remaining": elapsed / done * (state.max_steps - state.global_step),
        }
        line = json.dumps(record)
        with open(self.path, "a") as f:
            f.write(line + "\n")
        print("S1_STUDIO_STEP " + line, flush=True)


def train():
    parser = transformers.HfArgumentParser((TrainingConfig, trl.SFTConfig))
    config, args = parser.parse_args_into_dataclasses()
    logging.info(f"Training config: {({**asdict(config), **asdict(args)})}")

    model = transformers.AutoModelForCausalLM.from_pretrained(config.model_name)
    dataset = datasets.load_dataset("parquet", data_files={"train": config.train_file_path})

    tokenizer = transformers.AutoTokenizer.from_pretrained(config.model_name, use_fast=True)
    tokenizer.pad_token = config.pad_token
    # Only compute loss over assistant responses (s1: from after the response template on).
    collator = trl.DataCollatorForCompletionOnlyLM(
        instruction_template=config.instruction_template,
        response_template=config.response_template,
        tokenizer=tokenizer,
        mlm=False,
    )
    args.dataset_text_field = "text"
    args.max_seq_length = config.block_size
    order = None
    if config.order_file:
        with open(config.order_file) as f:
            order = json.load(f)["epochs"]
    trainer = StudioTrainer(
        model,
        train_dataset=dataset["train"],
        args=args,
        data_collator=collator,
        processing_class=tokenizer,
        studio_order=order,
    )
    trainer.add_callback(StudioLog(trainer, config.log_file))
    trainer.train()
    trainer.accelerator.wait_for_everyone()


if __name__ == "__main__":
    train()
