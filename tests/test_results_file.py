"""The provenance line every benchmark writes (benchmarks/results_file.py): the CPU decides a run's speed."""

from __future__ import annotations

import pytest

from benchmarks.results_file import cpu_kind

EPYC_AVX2 = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr fma avx avx2 bmi2

processor\t: 1
model name\t: AMD EPYC
flags\t\t: fpu vme de pse tsc msr fma avx avx2 bmi2
"""


@pytest.mark.parametrize(("extra_flags", "unit"), [
    ("", "AVX2, bf16 emulated"),
    (" avx512f avx512bw", "AVX512, bf16 emulated"),
    (" avx512f avx512_bf16", "AVX512-BF16, native bf16"),
    (" avx512f avx512_bf16 amx_tile amx_bf16", "AMX, native bf16"),
])
def test_cpu_kind_names_the_model_and_the_widest_vector_unit(extra_flags, unit):
    text = EPYC_AVX2.replace("bmi2\n", f"bmi2{extra_flags}\n", 1)
    assert cpu_kind(text) == f"AMD EPYC, {unit}"


def test_cpu_kind_of_an_unreadable_cpuinfo_says_so():
    assert cpu_kind("") == "unknown CPU, no AVX2"
    assert cpu_kind("model name : Some ARM core\nFeatures : fp asimd\n") == "Some ARM core, no AVX2"
