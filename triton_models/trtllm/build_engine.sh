#!/usr/bin/env bash
# Build the TensorRT-LLM engine of an 8B-class model and assemble the Triton model
# repository that Waybill's `triton` backend calls (docs/inference.md, "GPU fleet").
#
# Run INSIDE the Triton + TensorRT-LLM container on a GPU node, e.g.
#   docker run --rm --gpus all --shm-size=2g -v /srv/models:/models \
#     -v "$PWD":/waybill -w /waybill "$TRITON_IMAGE" \
#     bash triton_models/trtllm/build_engine.sh
# with the model's Hugging Face checkpoint (license-gated: download it yourself)
# in $HF_MODEL_DIR. Nothing here downloads weights.
#
# NOT RUN on the development machines (no GPU there): the CPU test model in
# triton_models/cpu_test has the same tensor contract and is what CI exercises.
set -euo pipefail

TRTLLM_VERSION=${TRTLLM_VERSION:-1.0.0}          # pinned: configs below follow this release
TRTLLM_SRC=${TRTLLM_SRC:-/opt/tensorrt_llm_src}  # git checkout of NVIDIA/TensorRT-LLM at v$TRTLLM_VERSION
MODEL=${MODEL:-llama-3.1-8b-instruct}
HF_MODEL_DIR=${HF_MODEL_DIR:-/models/hf/Llama-3.1-8B-Instruct}
OUT=${OUT:-/models/$MODEL}                        # engine, tokenizer, xgrammar info
REPO=${REPO:-/models/repository}                  # the Triton model repository
DTYPE=${DTYPE:-bfloat16}
QUANT=${QUANT:-fp8}                               # fp8 on H100/H200; "none" on A100
MAX_BATCH=${MAX_BATCH:-64}
MAX_INPUT=${MAX_INPUT:-8192}
MAX_SEQ=${MAX_SEQ:-9216}
HERE=$(cd "$(dirname "$0")" && pwd)

step() { printf '\n==> %s\n' "$*"; }
die() { echo "error: $*" >&2; exit 1; }

step "checking the container"
found=$(python3 -c 'import tensorrt_llm; print(tensorrt_llm.__version__)' 2>/dev/null) \
  || die "tensorrt_llm is not importable: run this inside the Triton TensorRT-LLM container"
[ "$found" = "$TRTLLM_VERSION" ] \
  || die "container has TensorRT-LLM $found, this recipe is pinned to $TRTLLM_VERSION"
nvidia-smi -L >/dev/null || die "no GPU visible (nvidia-smi failed)"
[ -d "$HF_MODEL_DIR" ] || die "HF_MODEL_DIR=$HF_MODEL_DIR does not exist"
if [ ! -d "$TRTLLM_SRC/.git" ]; then
  git clone --depth 1 --branch "v$TRTLLM_VERSION" https://github.com/NVIDIA/TensorRT-LLM.git "$TRTLLM_SRC"
fi
templates="$TRTLLM_SRC/triton_backend/all_models/inflight_batcher_llm"
[ -d "$templates" ] || die "$templates missing: TRTLLM_SRC is not release v$TRTLLM_VERSION"

step "checkpoint ($DTYPE, quantization: $QUANT)"
ckpt="$OUT/checkpoint"
if [ "$QUANT" = "fp8" ]; then
  python3 "$TRTLLM_SRC/examples/quantization/quantize.py" --model_dir "$HF_MODEL_DIR" \
    --dtype "$DTYPE" --qformat fp8 --kv_cache_dtype fp8 --output_dir "$ckpt" --tp_size 1
else
  python3 "$TRTLLM_SRC/examples/models/core/llama/convert_checkpoint.py" \
    --model_dir "$HF_MODEL_DIR" --output_dir "$ckpt" --dtype "$DTYPE" --tp_size 1
fi

step "engine"
# Paged context FMHA is what KV-cache reuse needs; max_num_tokens bounds a step
# of in-flight batching.
trtllm-build --checkpoint_dir "$ckpt" --output_dir "$OUT/engine" \
  --gemm_plugin auto --max_batch_size "$MAX_BATCH" \
  --max_input_len "$MAX_INPUT" --max_seq_len "$MAX_SEQ" --max_num_tokens 8192 \
  --use_paged_context_fmha enable --multiple_profiles enable

step "tokenizer and xgrammar tokenizer info"
mkdir -p "$OUT/tokenizer"
cp "$HF_MODEL_DIR"/tokenizer*.json "$HF_MODEL_DIR"/special_tokens_map.json "$OUT/tokenizer/" 2>/dev/null || true
xgr=$(find "$TRTLLM_SRC/triton_backend/tools" -name 'generate_xgrammar_tokenizer_info.py' | head -1)
[ -n "$xgr" ] || die "generate_xgrammar_tokenizer_info.py not found in the release's triton_backend/tools"
python3 "$xgr" --model_dir "$OUT/tokenizer" --output_file "$OUT/xgrammar_tokenizer_info.json"

step "model repository $REPO"
rm -rf "$REPO" && mkdir -p "$REPO"
cp -r "$HERE"/{ensemble,preprocessing,tensorrt_llm,postprocessing} "$REPO/"
find "$REPO" -name .gitkeep -delete
cp "$templates/preprocessing/1/model.py" "$REPO/preprocessing/1/model.py"
cp "$templates/postprocessing/1/model.py" "$REPO/postprocessing/1/model.py"
# Our configs declare only the tensors Waybill uses; every name must exist, with
# the same type, in the release's own templates.
python3 - "$REPO" "$templates" <<'PY'
import re, sys
from pathlib import Path
repo, templates = Path(sys.argv[1]), Path(sys.argv[2])
tensor = re.compile(r'name:\s*"(\w+)"\s*data_type:\s*(\w+)')
bad = []
for model in ("ensemble", "preprocessing", "tensorrt_llm", "postprocessing"):
    ours = dict(tensor.findall((repo / model / "config.pbtxt").read_text()))
    theirs = dict(tensor.findall((templates / model / "config.pbtxt").read_text()))
    for name, dtype in ours.items():
        if name not in theirs:
            bad.append(f"{model}.{name} (absent from the release)")
        elif theirs[name] != dtype and not theirs[name].startswith("$"):
            bad.append(f"{model}.{name} ({dtype}; release: {theirs[name]})")
if bad:
    sys.exit("tensor contract differs from the release: " + ", ".join(bad))
print("tensor contract matches TensorRT-LLM release templates")
PY

step "done"
cat <<MSG
Serve it (same container):
  tritonserver --model-repository=$REPO --grpc-port=8001 --http-port=8000 --metrics-port=8002
Point the tracking worker at it:
  WAYBILL_LLM_TRITON_SMALL_URL=<node>:8001 WAYBILL_LLM_TRITON_SMALL_TOKENIZER=$OUT/tokenizer/tokenizer.json
Measure it:
  python -m bench --scenario pool-overhead --triton-url <node>:8001 --prompt-format llama3
MSG
