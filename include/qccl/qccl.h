/*
 * qccl — Quantized Collective Communication Library. Public C API.
 *
 * Every call returns a qcclResult_t. qcclGetErrorString() names a code;
 * qcclGetLastError(comm) gives the detailed text of the last failure on a
 * communicator (or, with comm == NULL, of the last failure on this thread).
 * See docs/api.md for the semantics of each call.
 */
#ifndef QCCL_QCCL_H_
#define QCCL_QCCL_H_

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QCCL_MAJOR 0
#define QCCL_MINOR 1
#define QCCL_PATCH 0
#define QCCL_VERSION_CODE (QCCL_MAJOR * 10000 + QCCL_MINOR * 100 + QCCL_PATCH)

typedef enum {
  qcclSuccess = 0,
  qcclUnhandledCudaError = 1,
  qcclSystemError = 2,
  qcclInternalError = 3,
  qcclInvalidArgument = 4,
  qcclInvalidUsage = 5,
  qcclRemoteError = 6,
  qcclInProgress = 7,
  qcclCorruptPayload = 8,
  qcclTimeout = 9,
  qcclTransportError = 10,
  qcclNumResults = 11
} qcclResult_t;

typedef enum {
  qcclFloat32 = 0,
  qcclFloat16 = 1,
  qcclBfloat16 = 2,
  qcclNumTypes = 3
} qcclDataType_t;

typedef enum { qcclSum = 0, qcclAvg = 1, qcclNumOps = 2 } qcclRedOp_t;

typedef enum {
  qcclMethodNone = 0,
  qcclMethodFp16 = 1,
  qcclMethodBf16 = 2,
  qcclMethodQsgd = 3,
  qcclMethodQsgdInf = 4,
  qcclMethodNuqsgd = 5,
  qcclMethodTrn = 6,
  qcclMethodAlq = 7,
  qcclMethodAlqN = 8,
  qcclMethodAmq = 9,
  qcclMethodAmqN = 10,
  qcclMethodDqsgd = 11,
  qcclNumMethods = 12
} qcclMethod_t;

/* Configuration overrides. Initialise with QCCL_CONFIG_INITIALIZER: every
 * field left at its "unset" value (NULL) is taken from the environment
 * (QCCL_* variables), then from the default. Values are the same strings the
 * environment variables accept, so one parser validates both. */
typedef struct {
  size_t size;                  /* sizeof(qcclConfig_t), set by the initializer */
  const char* method;           /* QCCL_METHOD */
  const char* bits;             /* QCCL_BITS */
  const char* bucketSize;       /* QCCL_BUCKET_SIZE */
  const char* norm;             /* QCCL_NORM */
  const char* algo;             /* QCCL_ALGO */
  const char* minCompressBytes; /* QCCL_MIN_COMPRESS_BYTES */
  const char* seed;             /* QCCL_SEED */
  const char* updateSteps;      /* QCCL_UPDATE_STEPS */
  const char* updateEvery;      /* QCCL_UPDATE_EVERY */
  const char* model;            /* QCCL_MODEL */
  const char* errorFeedback;    /* QCCL_ERROR_FEEDBACK */
  const char* fusionThreshold;  /* QCCL_FUSION_THRESHOLD */
  const char* cycleTimeMs;      /* QCCL_CYCLE_TIME_MS */
  const char* timeline;         /* QCCL_TIMELINE */
  const char* debug;            /* QCCL_DEBUG */
  const char* timeoutS;         /* QCCL_TIMEOUT_S */
  const char* compressOneRank;  /* QCCL_COMPRESS_ONE_RANK (a testing aid) */
  const char* onTimeout;        /* QCCL_ON_TIMEOUT */
} qcclConfig_t;

#define QCCL_CONFIG_INITIALIZER                                                                   \
  {                                                                                               \
    sizeof(qcclConfig_t), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
        NULL, NULL, NULL, NULL, NULL, NULL                                                        \
  }

#define QCCL_MAX_LEVELS 256

typedef struct {
  uint64_t calls;           /* collectives completed on this communicator */
  uint64_t compressedCalls; /* of which went through a compressed algorithm */
  uint64_t inputBytes;      /* bytes of user data reduced/gathered */
  uint64_t wireBytes;       /* payload bytes this rank sent */
  double compressionRatio;  /* inputBytes-equivalent / wireBytes for compressed calls */
  qcclMethod_t method;
  int bits;
  uint32_t tableVersion; /* version of the level table in force */
  int numLevels;         /* entries of levels[] that are valid */
  float levels[QCCL_MAX_LEVELS];
  double predictedVariance; /* the model's V per coordinate (units of norm^2), <0 if none */
  uint64_t step;            /* current step counter */
} qcclStats_t;

typedef struct qcclComm* qcclComm_t;

#define QCCL_UNIQUE_ID_BYTES 128
typedef struct {
  char internal[QCCL_UNIQUE_ID_BYTES];
} qcclUniqueId;

const char* qcclGetErrorString(qcclResult_t result);
/* Detailed text of the last error on comm; comm == NULL: last error of this thread. */
const char* qcclGetLastError(qcclComm_t comm);
qcclResult_t qcclGetVersion(int* version);

/* Parse and validate a configuration (env + overrides) without creating a
 * communicator. Useful for checking a setup; the error text is available
 * through qcclGetLastError(NULL). */
qcclResult_t qcclConfigValidate(const qcclConfig_t* config);

/* Create a communicator over an MPI communicator (passed as a pointer to an
 * MPI_Comm so this header does not depend on mpi.h). Collective call. */
qcclResult_t qcclCommInitMpi(qcclComm_t* comm, const void* mpiComm, const qcclConfig_t* config);
/* NCCL-style bootstrap (docs/api.md, docs/gpu.md "The NCCL path"): rank 0 calls
 * qcclGetUniqueId and sends the id to every rank by its own means; each rank
 * then calls qcclCommInitRank (collective; one GPU per rank, the current
 * CUDA device). The communicator owns its NCCL communicator. In a build
 * without NCCL these return qcclInvalidUsage. */
qcclResult_t qcclGetUniqueId(qcclUniqueId* uniqueId);
qcclResult_t qcclCommInitRank(qcclComm_t* comm, int nranks, qcclUniqueId commId, int rank,
                              const qcclConfig_t* config);
/* Wrap an NCCL communicator the framework already has (an ncclComm_t, passed
 * as void* so this header does not depend on nccl.h). Collective over it. Not
 * owned: qcclCommDestroy leaves it alive, and it must outlive the qccl one. */
qcclResult_t qcclCommInitNccl(qcclComm_t* comm, void* ncclComm, const qcclConfig_t* config);

/* ---- Bring your own transport (docs/api.md "Communicators over your own
 * transport") ---------------------------------------------------------------
 * A communicator whose bytes move through the caller's callbacks, e.g. a
 * framework's process group (qccl.torch.init uses torch.distributed), so no
 * MPI is needed. Host buffers only. Every callback is collective over the
 * `nranks` ranks, gets `ctx` first, returns qcclSuccess or any other code on
 * failure, and completes before it returns. qccl never calls the callbacks
 * of one ctx from two threads at once; a duplicate's ctx may be called from
 * another thread while the original's is in use.
 *
 * A callback that fails makes the qccl call fail with qcclTransportError
 * naming the operation and quoting lastError(ctx); the transport then
 * refuses every later call (qcclInvalidUsage), since ranks may be out of
 * step. Destroy the communicator and create a new one.
 *
 * Only allgatherv is required. A NULL optional callback gets a fallback
 * built on allgatherv that gives every rank the same bits:
 *   alltoallv             two allgathervs (every rank receives every piece:
 *                         N times the traffic of a real all-to-all)
 *   allreduceSum          allgatherv, then a sum in rank order
 *   allreducePassthrough  allgatherv, then a float32 sum in rank order
 *                         (float16/bfloat16 widened, rounded back once)
 *   barrier               a one-byte allgatherv
 *   duplicate             none: the engine (qcclEngineStart) cannot run
 *   destroy, lastError    nothing is called / no error text */
typedef struct {
  size_t size; /* sizeof(qcclTransportOps_t), set by the initializer */
  int rank;    /* this rank, 0 <= rank < nranks */
  int nranks;  /* ranks in the transport, >= 1 */
  void* ctx;   /* passed to every callback; may be NULL */
  /* Required. Rank r's `sendBytes` bytes land at recv + recvOffsets[r];
   * recvBytes[r] equals what rank r sends. */
  qcclResult_t (*allgatherv)(void* ctx, const void* send, uint64_t sendBytes, void* recv,
                             const uint64_t* recvBytes, const uint64_t* recvOffsets);
  /* sendBytes[r] bytes at send + sendOffsets[r] go to rank r; rank r's piece
   * for this rank lands at recv + recvOffsets[r] (recvBytes[r] bytes). */
  qcclResult_t (*alltoallv)(void* ctx, const void* send, const uint64_t* sendBytes,
                            const uint64_t* sendOffsets, void* recv, const uint64_t* recvBytes,
                            const uint64_t* recvOffsets);
  /* In-place sum of `count` doubles (statistics: a few KB at most). */
  qcclResult_t (*allreduceSum)(void* ctx, double* values, size_t count);
  /* Uncompressed sum of a user buffer (method none, small buffers): the
   * framework's own allreduce, so that method none equals it bit for bit.
   * Every rank must get the same bits. `send` may equal `recv`. */
  qcclResult_t (*allreducePassthrough)(void* ctx, const void* send, void* recv, size_t count,
                                       qcclDataType_t datatype);
  qcclResult_t (*barrier)(void* ctx);
  /* Collective: a new ctx over the same ranks (same numbering) whose
   * messages never match this ctx's, like MPI_Comm_dup. The duplicate shares
   * every callback; qccl destroys it with destroy(). */
  qcclResult_t (*duplicate)(void* ctx, void** newCtx);
  /* Called once per ctx qccl owns: the one of a successful
   * qcclCommInitTransport when the communicator is destroyed, and every
   * duplicate's. A failed qcclCommInitTransport never calls it: the caller
   * still owns ctx. */
  void (*destroy)(void* ctx);
  /* Text of the last failed callback on ctx (copied at once; may be NULL). */
  const char* (*lastError)(void* ctx);
} qcclTransportOps_t;

#define QCCL_TRANSPORT_OPS_INITIALIZER \
  { sizeof(qcclTransportOps_t), 0, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL }

/* Creates a communicator over `ops` (collective over its nranks ranks: the
 * configuration is agreed through allgatherv, like every qcclCommInit*).
 * `ops` is copied. A NULL ops, a wrong ops->size, nranks < 1, a rank outside
 * [0, nranks) or a NULL allgatherv is qcclInvalidArgument. */
qcclResult_t qcclCommInitTransport(qcclComm_t* comm, const qcclTransportOps_t* ops,
                                   const qcclConfig_t* config);

qcclResult_t qcclCommDestroy(qcclComm_t comm);
qcclResult_t qcclCommCount(qcclComm_t comm, int* count);
qcclResult_t qcclCommUserRank(qcclComm_t comm, int* rank);

/* Compressed allreduce. Host buffers complete before return; device buffers
 * are stream-ordered on `stream` (a cudaStream_t, may be NULL). */
qcclResult_t qcclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           qcclDataType_t datatype, qcclRedOp_t op, qcclComm_t comm, void* stream);
/* recvbuff holds nranks * sendcount elements, rank-major. */
qcclResult_t qcclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           qcclDataType_t datatype, qcclComm_t comm, void* stream);

/* Mark the end of a training step (advances the step counter used by the RNG
 * and the adaptation schedule). Without marks every collective is a step. */
qcclResult_t qcclCommMarkStep(qcclComm_t comm);
/* Report the learning rate (used by DQSGD's bit choice). */
qcclResult_t qcclCommSetLearningRate(qcclComm_t comm, double lr);

qcclResult_t qcclCommGetStats(qcclComm_t comm, qcclStats_t* stats);

/* ---- Engine: Horovod-style asynchronous, named, fused allreduce ----------
 * (docs/design.md §8, docs/engine.md). Tensors are enqueued by name from any
 * thread; a background cycle thread agrees with the other ranks which names
 * are ready everywhere, fuses them, runs the compressed allreduce and fires
 * the callback (on the cycle thread). The engine runs on its own duplicate
 * of the communicator's transport with its own adapter, so direct
 * qcclAllReduce calls on the same communicator keep working from another
 * thread while it runs (docs/engine.md "Its own communicator"). */

/* Called once per enqueued tensor, on the engine's cycle thread. `error` is
 * the detailed message when result != qcclSuccess (valid during the call
 * only), "" otherwise. The buffer holds the reduced values on success. */
typedef void (*qcclEngineCallback_t)(qcclResult_t result, const char* name, const char* error,
                                     void* user);

/* Flags for qcclEnqueueAllReduceFlags. */
#define QCCL_ENQUEUE_UNCOMPRESSED 1u /* keep this tensor uncompressed (biases, norms) */

/* Starts the engine of `comm` (collective: every rank must start it).
 * Uses the communicator's QCCL_CYCLE_TIME_MS, QCCL_FUSION_THRESHOLD,
 * QCCL_MIN_COMPRESS_BYTES, QCCL_ERROR_FEEDBACK, QCCL_TIMELINE and
 * QCCL_TIMEOUT_S (a name not submitted by every rank within it fails with
 * qcclTimeout, naming the ranks that have and have not submitted it).
 * Duplicates the communicator's transport: qcclInvalidUsage on every rank
 * when it cannot (MPI initialised without MPI_THREAD_MULTIPLE, or a
 * transport without duplicate). No direct call on `comm` may run meanwhile. */
qcclResult_t qcclEngineStart(qcclComm_t comm);

/* Stops the engine (collective): returns once every rank has asked to stop.
 * Tensors still pending fail their callback with qcclInvalidUsage. Returns
 * the error that broke the engine, if any. Call before qcclCommDestroy. */
qcclResult_t qcclEngineStop(qcclComm_t comm);

/* Enqueues an in-place allreduce of `buf` (host memory, `count` elements)
 * under `name`; the buffer must stay valid and untouched until the
 * callback. Thread-safe. A name already pending on this rank is
 * qcclInvalidUsage; a name whose count/dtype/op differ between ranks fails
 * through the callback with qcclInvalidUsage on every rank. */
qcclResult_t qcclEnqueueAllReduce(qcclComm_t comm, const char* name, void* buf, size_t count,
                                  qcclDataType_t datatype, qcclRedOp_t op,
                                  qcclEngineCallback_t callback, void* user);
qcclResult_t qcclEnqueueAllReduceFlags(qcclComm_t comm, const char* name, void* buf, size_t count,
                                       qcclDataType_t datatype, qcclRedOp_t op, unsigned flags,
                                       qcclEngineCallback_t callback, void* user);

/* The engine's own counters (it runs its own collective context). */
qcclResult_t qcclEngineGetStats(qcclComm_t comm, qcclStats_t* stats);

#ifdef __cplusplus
}
#endif

#endif /* QCCL_QCCL_H_ */
