"""Builds the optional CPU kernels; everything else is declared in pyproject.toml.

The kernels are plain C with AVX2/FMA/F16C intrinsics and OpenMP. When the platform is not
x86-64 or no C compiler is present the build is skipped and the engine falls back to torch.
"""

import platform

from setuptools import Extension, setup


def cpu_kernel_extensions() -> list[Extension]:
    if platform.machine().lower() not in ("x86_64", "amd64") or platform.system() == "Windows":
        return []
    return [
        Extension(
            "inference.kernels._cpu",
            sources=[f"inference/kernels/{name}.c" for name in ("module", "quant_matmul", "int8_matmul", "decode_ops")],
            depends=["inference/kernels/common.h"],
            # -ffp-contract=off keeps the dequantizers bit-exact with ggml's reference (no fused a*b+c).
            extra_compile_args=["-O3", "-mavx2", "-mfma", "-mf16c", "-fopenmp", "-ffp-contract=off"],
            extra_link_args=["-fopenmp"],
            optional=True,
        )
    ]


setup(ext_modules=cpu_kernel_extensions())
