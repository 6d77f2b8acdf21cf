/* netem_probe: checks the namespace/mpirun plumbing without qccl and
 * calibrates the shaped links. Rank 0 and rank 1 ping-pong (small-message
 * round-trip time and one-way large-message throughput), then every rank
 * times MPI_Allreduce of float32 buffers. Built by netem_bench.py with mpicc.
 *   netem_probe [bytes=16M] [iters=5]
 * Prints "key value" lines that netem_bench.py parses. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static double now(void) {
  return MPI_Wtime();
}

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank, nranks;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &nranks);
  const size_t bytes = argc > 1 ? strtoull(argv[1], NULL, 0) : (16u << 20);
  const int iters = argc > 2 ? atoi(argv[2]) : 5;
  char* buf = calloc(bytes, 1);
  char* out = calloc(bytes, 1);
  /* All namespaces share one hostname; the network namespace inode tells
   * which emulated host a rank really runs in. */
  char name[64] = "?";
  const ssize_t len = readlink("/proc/self/ns/net", name, sizeof name - 1);
  if (len > 0) name[len] = 0;
  if (nranks >= 2 && rank < 2) {
    const int peer = 1 - rank;
    /* Round trip of 8 bytes: twice the one-way latency of the shaped path. */
    double t0 = 0;
    for (int i = 0; i < 1000 + 100; ++i) {
      if (i == 100) t0 = now();
      if (rank == 0) {
        MPI_Send(buf, 8, MPI_CHAR, peer, 0, MPI_COMM_WORLD);
        MPI_Recv(buf, 8, MPI_CHAR, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      } else {
        MPI_Recv(buf, 8, MPI_CHAR, peer, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        MPI_Send(buf, 8, MPI_CHAR, peer, 0, MPI_COMM_WORLD);
      }
    }
    const double rtt = (now() - t0) / 1000;
    /* One-way stream 0 -> 1, acknowledged once at the end. */
    t0 = now();
    for (int i = 0; i < iters; ++i) {
      if (rank == 0)
        MPI_Send(buf, (int)bytes, MPI_CHAR, peer, 1, MPI_COMM_WORLD);
      else
        MPI_Recv(buf, (int)bytes, MPI_CHAR, peer, 1, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
    if (rank == 0)
      MPI_Recv(buf, 1, MPI_CHAR, peer, 2, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    else
      MPI_Send(buf, 1, MPI_CHAR, peer, 2, MPI_COMM_WORLD);
    const double secs = now() - t0;
    if (rank == 0) {
      printf("rtt_us %.1f\n", rtt * 1e6);
      printf("p2p_gbit %.3f\n", 8.0 * bytes * iters / secs / 1e9);
    }
  }
  MPI_Barrier(MPI_COMM_WORLD);
  const int count = (int)(bytes / sizeof(float));
  MPI_Allreduce(buf, out, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD); /* warm-up */
  MPI_Barrier(MPI_COMM_WORLD);
  double t0 = now();
  for (int i = 0; i < iters; ++i)
    MPI_Allreduce(buf, out, count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  double us = (now() - t0) / iters * 1e6;
  MPI_Allreduce(MPI_IN_PLACE, &us, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  /* Every rank names its host address so the launcher can check placement. */
  char line[256];
  snprintf(line, sizeof line, "rank %d of %d in %s", rank, nranks, name);
  if (rank == 0) {
    puts(line);
    for (int r = 1; r < nranks; ++r) {
      MPI_Recv(line, sizeof line, MPI_CHAR, r, 3, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      puts(line);
    }
    printf("allreduce_bytes %zu\nallreduce_us %.1f\nallreduce_busbw_gbit %.3f\n", bytes, us,
           8.0 * bytes * 2.0 * (nranks - 1) / nranks / us / 1e3);
  } else {
    MPI_Send(line, sizeof line, MPI_CHAR, 0, 3, MPI_COMM_WORLD);
  }
  free(buf);
  free(out);
  MPI_Finalize();
  return 0;
}
