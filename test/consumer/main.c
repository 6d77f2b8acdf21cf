/* A downstream C program that finds qccl with find_package and links it. */
#include <qccl/qccl.h>
#include <stdio.h>
#include <string.h>

int main(void) {
  int version = 0;
  if (qcclGetVersion(&version) != qcclSuccess || version != QCCL_VERSION_CODE) return 1;
  if (strcmp(qcclGetErrorString(qcclCorruptPayload), "no error") == 0) return 2;
  qcclConfig_t config = QCCL_CONFIG_INITIALIZER;
  config.bits = "12";
  if (qcclConfigValidate(&config) != qcclInvalidArgument) return 3;
  if (strstr(qcclGetLastError(NULL), "QCCL_BITS") == NULL) return 4;
  printf("consumer linked qccl %d\n", version);
  return 0;
}
