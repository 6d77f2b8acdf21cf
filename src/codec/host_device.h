// Marks code that is compiled for both the CPU codec and the CUDA kernels.
// docs/design.md §5: the maths is written once; CPU and GPU must produce
// byte-identical payloads, so this code avoids anything whose rounding can
// differ between the two (no FMA contraction, no fast-math intrinsics).
#pragma once

#if defined(__CUDACC__)
#define QCCL_HD __host__ __device__ __forceinline__
#else
#define QCCL_HD inline
#endif

// Runtime SIMD dispatch for CPU hot loops: an AVX2 clone and a portable
// one, picked by the loader (no -march=native needed). GCC only: clang 14
// cannot clone function templates, so clang builds use the portable loops.
#if defined(QCCL_NO_TARGET_CLONES) || defined(__CUDACC__) || !defined(__x86_64__) || \
    defined(__clang__)
#define QCCL_SIMD_CLONES
#else
#define QCCL_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#endif

namespace qccl {

// a*b rounded once, never fused into a following add. nvcc contracts
// a*b+c into an FMA by default; the host build uses -ffp-contract=off.
QCCL_HD float mul_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fmul_rn(a, b);
#else
  return a * b;
#endif
}

QCCL_HD float add_rn(float a, float b) {
#if defined(__CUDA_ARCH__)
  return __fadd_rn(a, b);
#else
  return a + b;
#endif
}

}  // namespace qccl
