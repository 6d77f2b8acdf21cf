// The one place the codec kernel templates are instantiated (see
// kernel_dispatch.cuh): each switch below names every variant that exists.
#include <algorithm>

#include "core/cuda_check.h"
#include "decode_kernel.cuh"
#include "encode_kernel.cuh"
#include "kernel_dispatch.cuh"

namespace qccl {
namespace kernels {
namespace {

// Grid for the element-wise kernels: enough blocks to fill any current GPU,
// grid-striding beyond that.
constexpr int kElementThreads = 256;
unsigned element_blocks(uint64_t count) {
  const uint64_t blocks = div_ceil(count, kElementThreads);
  return static_cast<unsigned>(std::max<uint64_t>(1, std::min<uint64_t>(blocks, 65536)));
}

template <int kBits, DataType kDtype>
Result launch_quantized(const EncodeArgs& args, cudaStream_t stream) {
  const uint64_t blocks = std::max<uint64_t>(1, num_buckets(args.count, args.bucket_size));
  if (blocks > 0x7FFFFFFFull)
    return fail(qcclInvalidArgument, "encode: {} buckets exceed one CUDA grid", blocks);
  if (args.bucket_size <= kMaxStagedBucket) {
    const size_t staged_bytes = sizeof(float) * args.bucket_size;
    encode_quantized_kernel<kBits, kDtype, true>
        <<<static_cast<unsigned>(blocks), kEncodeThreads, staged_bytes, stream>>>(args);
  } else {
    encode_quantized_kernel<kBits, kDtype, false>
        <<<static_cast<unsigned>(blocks), kEncodeThreads, 0, stream>>>(args);
  }
  QCCL_CUDA_CHECK_LAUNCH("encode_quantized_kernel");
  return qcclSuccess;
}

template <DataType kDtype>
Result launch_quantized_bits(const EncodeArgs& args, int bits, cudaStream_t stream) {
  switch (bits) {
    case 1: return launch_quantized<1, kDtype>(args, stream);
    case 2: return launch_quantized<2, kDtype>(args, stream);
    case 3: return launch_quantized<3, kDtype>(args, stream);
    case 4: return launch_quantized<4, kDtype>(args, stream);
    case 5: return launch_quantized<5, kDtype>(args, stream);
    case 6: return launch_quantized<6, kDtype>(args, stream);
    case 7: return launch_quantized<7, kDtype>(args, stream);
    case 8: return launch_quantized<8, kDtype>(args, stream);
  }
  return fail(qcclInvalidArgument, "encode: bits must be 1..8, got {}", bits);
}

template <DataType kDtype>
Result launch_cast_method(const EncodeArgs& args, Method method, cudaStream_t stream) {
  const unsigned blocks = element_blocks(args.count);
  switch (method) {
    case Method::kNone:
      encode_cast_kernel<kDtype, Method::kNone><<<blocks, kElementThreads, 0, stream>>>(args);
      break;
    case Method::kFp16:
      encode_cast_kernel<kDtype, Method::kFp16><<<blocks, kElementThreads, 0, stream>>>(args);
      break;
    case Method::kBf16:
      encode_cast_kernel<kDtype, Method::kBf16><<<blocks, kElementThreads, 0, stream>>>(args);
      break;
    default: return fail(qcclInternalError, "encode: method {} is not a cast", method_name(method));
  }
  QCCL_CUDA_CHECK_LAUNCH("encode_cast_kernel");
  return qcclSuccess;
}

}  // namespace

Result launch_encode_quantized(const EncodeArgs& args, DataType dtype, int bits,
                               cudaStream_t stream) {
  switch (dtype) {
    case DataType::kFloat32: return launch_quantized_bits<DataType::kFloat32>(args, bits, stream);
    case DataType::kFloat16: return launch_quantized_bits<DataType::kFloat16>(args, bits, stream);
    case DataType::kBfloat16: return launch_quantized_bits<DataType::kBfloat16>(args, bits, stream);
  }
  return fail(qcclInvalidArgument, "encode: unknown dtype {}", static_cast<int>(dtype));
}

Result launch_encode_cast(const EncodeArgs& args, DataType dtype, Method method,
                          cudaStream_t stream) {
  switch (dtype) {
    case DataType::kFloat32: return launch_cast_method<DataType::kFloat32>(args, method, stream);
    case DataType::kFloat16: return launch_cast_method<DataType::kFloat16>(args, method, stream);
    case DataType::kBfloat16: return launch_cast_method<DataType::kBfloat16>(args, method, stream);
  }
  return fail(qcclInvalidArgument, "encode: unknown dtype {}", static_cast<int>(dtype));
}

Result launch_decode_accumulate(const DecodeSources& sources, int n, uint64_t count, float* acc,
                                bool assign_first, const uint32_t* poisoned, uint32_t* error,
                                cudaStream_t stream) {
  const uint64_t warps = div_ceil(count, kGroupSize);
  const uint64_t blocks = div_ceil(warps, kDecodeThreads / 32);
  const unsigned grid =
      static_cast<unsigned>(std::max<uint64_t>(1, std::min<uint64_t>(blocks, 65536)));
  decode_accumulate_kernel<<<grid, kDecodeThreads, 0, stream>>>(sources, n, count, acc,
                                                                assign_first, poisoned, error);
  QCCL_CUDA_CHECK_LAUNCH("decode_accumulate_kernel");
  return qcclSuccess;
}

Result launch_check_headers(const DecodeSources& sources, int n, const PayloadHeader& expected,
                            uint32_t* poisoned, uint32_t* error, cudaStream_t stream) {
  constexpr int kThreads = 64;
  const unsigned grid = static_cast<unsigned>(div_ceil(static_cast<uint64_t>(n), kThreads));
  check_headers_kernel<<<grid, kThreads, 0, stream>>>(sources, n, expected, poisoned, error);
  QCCL_CUDA_CHECK_LAUNCH("check_headers_kernel");
  return qcclSuccess;
}

Result launch_cast_from_float(const float* in, uint64_t count, DataType dtype, void* out,
                              cudaStream_t stream) {
  const unsigned blocks = element_blocks(count);
  switch (dtype) {
    case DataType::kFloat32:
      cast_from_float_kernel<DataType::kFloat32>
          <<<blocks, kElementThreads, 0, stream>>>(in, count, out);
      break;
    case DataType::kFloat16:
      cast_from_float_kernel<DataType::kFloat16>
          <<<blocks, kElementThreads, 0, stream>>>(in, count, out);
      break;
    case DataType::kBfloat16:
      cast_from_float_kernel<DataType::kBfloat16>
          <<<blocks, kElementThreads, 0, stream>>>(in, count, out);
      break;
    default: return fail(qcclInvalidArgument, "cast: unknown dtype {}", static_cast<int>(dtype));
  }
  QCCL_CUDA_CHECK_LAUNCH("cast_from_float_kernel");
  return qcclSuccess;
}

Result launch_cast_to_float(const void* in, uint64_t count, DataType dtype, float* out,
                            cudaStream_t stream) {
  const unsigned blocks = element_blocks(count);
  switch (dtype) {
    case DataType::kFloat32:
      cast_to_float_kernel<DataType::kFloat32>
          <<<blocks, kElementThreads, 0, stream>>>(in, count, out);
      break;
    case DataType::kFloat16:
      cast_to_float_kernel<DataType::kFloat16>
          <<<blocks, kElementThreads, 0, stream>>>(in, count, out);
      break;
    case DataType::kBfloat16:
      cast_to_float_kernel<DataType::kBfloat16>
          <<<blocks, kElementThreads, 0, stream>>>(in, count, out);
      break;
    default: return fail(qcclInvalidArgument, "cast: unknown dtype {}", static_cast<int>(dtype));
  }
  QCCL_CUDA_CHECK_LAUNCH("cast_to_float_kernel");
  return qcclSuccess;
}

}  // namespace kernels
}  // namespace qccl
