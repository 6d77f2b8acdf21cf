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
} qcclConfig_t;

#define QCCL_CONFIG_INITIALIZER                                                                   \
  {                                                                                               \
    sizeof(qcclConfig_t), NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, \
        NULL, NULL, NULL, NULL                                                                    \
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

#ifdef __cplusplus
}
#endif

#endif /* QCCL_QCCL_H_ */
