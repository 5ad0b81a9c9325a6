"""The CPU test model, the GPU ensemble and the client speak one tensor contract."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from cli.triton import REPO_ROOT
from llm_pool.triton import INPUTS, OUTPUTS

TENSOR = re.compile(r'name:\s*"(\w+)"\s*data_type:\s*TYPE_(\w+)')
TRITON_TYPES = {"STRING": "BYTES"}
CONFIGS = {
    "cpu_test": REPO_ROOT / "triton_models" / "cpu_test" / "ensemble" / "config.pbtxt",
    "trtllm": REPO_ROOT / "triton_models" / "trtllm" / "ensemble" / "config.pbtxt",
}


def _section(text: str, name: str) -> dict[str, str]:
    start = text.index(f"\n{name} [")
    body = text[start : text.index("\n]", start)]
    return {n: TRITON_TYPES.get(t, t) for n, t in TENSOR.findall(body)}


@pytest.mark.parametrize("which", sorted(CONFIGS))
def test_the_ensemble_declares_every_tensor_the_client_uses(which: str) -> None:
    text = Path(CONFIGS[which]).read_text()
    inputs, outputs = _section(text, "input"), _section(text, "output")
    for name, dtype in INPUTS.items():
        assert inputs.get(name) == dtype, f"{which}: input {name}"
    for name, dtype in OUTPUTS.items():
        assert outputs.get(name) == dtype, f"{which}: output {name}"


def test_cpu_test_model_and_gpu_ensemble_have_the_same_contract() -> None:
    cpu = Path(CONFIGS["cpu_test"]).read_text()
    gpu = Path(CONFIGS["trtllm"]).read_text()
    assert _section(cpu, "input") == _section(gpu, "input")
    assert _section(cpu, "output") == _section(gpu, "output")


def test_streaming_settings_of_the_gpu_repository() -> None:
    llm = (REPO_ROOT / "triton_models" / "trtllm" / "tensorrt_llm" / "config.pbtxt").read_text()
    assert re.search(r"decoupled:\s*true", llm)
    for key, value in {
        "gpt_model_type": "inflight_fused_batching",
        "enable_kv_cache_reuse": "true",
        "guided_decoding_backend": "xgrammar",
    }.items():
        assert re.search(rf'key: "{key}" value: {{ string_value: "{value}" }}', llm), key
    assert 'key: "kv_cache_free_gpu_mem_fraction"' in llm
    cpu = Path(CONFIGS["cpu_test"]).read_text()
    assert re.search(r"decoupled:\s*true", cpu)
