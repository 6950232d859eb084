#!/usr/bin/env bash
# s1's train/sft.sh as s1-studio exported it: {{ examples }} examples, {{ total_steps }} steps of
# {{ global_batch }} examples, on however many processes this node gives (torchrun), one node or
# several (NNODES, NODE_RANK, MASTER_ADDR: job.sbatch, ray_job.py and sky.yaml set them).
#
#   DEVICE=cuda (when nvidia-smi lists GPUs): one process per GPU, FSDP full_shard auto_wrap on
#               {{ layer_class }}, bf16 (s1's).
#   DEVICE=cpu: fp32, gloo, no FSDP (for a check on any machine: NPROC=2 DEVICE=cpu bash launch.sh).
#
# The global batch stays {{ global_batch }} whatever the world size: gradient accumulation is
# {{ global_batch }} / (processes x {{ micro_batch }}), and the world size must divide it.
set -euo pipefail
cd "$(dirname "$0")"
if [ -z "${DEVICE:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then DEVICE=cuda; else DEVICE=cpu; fi
fi
if [ -z "${NPROC:-}" ]; then
  if [ "$DEVICE" = cuda ]; then NPROC=$(nvidia-smi -L | wc -l); else NPROC=1; fi
fi
NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-12345}"
TORCHRUN="${TORCHRUN:-torchrun}"
LOG_FILE="${LOG_FILE:-trainer_log.jsonl}"
# Where checkpoints go (this folder unless a job's copy of it is ephemeral: Ray's uploaded one).
OUTPUT_DIR="${OUTPUT_DIR:-.}"
GLOBAL_BATCH={{ global_batch }}
MICRO_BATCH={{ micro_batch }}
WORLD=$((NPROC * NNODES))
if [ $((GLOBAL_BATCH % (WORLD * MICRO_BATCH))) -ne 0 ]; then
  echo "launch.sh: the global batch of $GLOBAL_BATCH examples does not divide over $WORLD processes x $MICRO_BATCH per micro-batch; choose NPROC x NNODES dividing $GLOBAL_BATCH" >&2
  exit 2
fi
GRAD_ACCUM=$((GLOBAL_BATCH / (WORLD * MICRO_BATCH)))
if [ "$DEVICE" = cuda ]; then
  DEVICE_ARGS=(--fsdp="full_shard auto_wrap" --fsdp_config=fsdp_config.json --bf16=True)
else
  DEVICE_ARGS=(--use_cpu=True --ddp_backend=gloo)
fi
echo "launch.sh: $NNODES node(s) x $NPROC process(es) on $DEVICE, micro-batch $MICRO_BATCH, gradient accumulation $GRAD_ACCUM, global batch $GLOBAL_BATCH"
# shellcheck disable=SC2086 # TORCHRUN may be a command with arguments (python -m torch.distributed.run)
exec $TORCHRUN --nproc-per-node "$NPROC" --nnodes "$NNODES" --node-rank "$NODE_RANK" \
    --master-addr "$MASTER_ADDR" --master-port "$MASTER_PORT" \
    train.py \
    --model_name={{ model_name }} \
    --train_file_path=data/train.parquet \
    --order_file={{ order_file }} \
    --log_file="$LOG_FILE" \
    --block_size={{ block_size }} \
    --instruction_template={{ instruction_template }} \
    --response_template={{ response_template }} \
    --pad_token={{ pad_token }} \
    --per_device_train_batch_size="$MICRO_BATCH" \
    --gradient_accumulation_steps="$GRAD_ACCUM" \
    --num_train_epochs={{ epochs }} \
    --warmup_ratio={{ warmup_ratio }} \
    --eval_strategy="no" \
    --logging_steps=1 \
    --save_strategy={{ save_strategy }} \
{%- if save_steps %}
    --save_steps={{ save_steps }} \
{%- endif %}
{%- if save_total_limit %}
    --save_total_limit={{ save_total_limit }} \
{%- endif %}
    --save_only_model=True \
    --lr_scheduler_type="cosine" \
    --learning_rate={{ lr }} \
    --weight_decay={{ weight_decay }} \
    --adam_beta1={{ beta1 }} \
    --adam_beta2={{ beta2 }} \
    --adam_epsilon={{ eps }} \
    --max_grad_norm={{ max_grad_norm }} \
    --seed={{ seed }} \
{%- if gradient_checkpointing %}
    --gradient_checkpointing=True \
{%- endif %}
    --report_to=none \
    --output_dir="$OUTPUT_DIR" \
    --push_to_hub=false \
    "${DEVICE_ARGS[@]}" "$@"
