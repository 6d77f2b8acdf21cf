/* netem_probe: checks the namespace/mpirun plumbing without qccl and
 * calibrates the shaped links. Rank 0 and rank 1 ping-pong (small-message
 * round-trip time over MPI and over a plain blocking TCP socket, one-way
 * large-message throughput), then every rank times MPI_Allreduce of float32
 * buffers. Built by netem_bench.py with mpicc.
 *   netem_probe [bytes=16M] [iters=5]
 * Prints "key value" lines that netem_bench.py parses. */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <mpi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static double now(void) {
  return MPI_Wtime();
}

static int compare_doubles(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Moves n bytes over a blocking socket; 0 on success. */
static int socket_io(int fd, char* buf, size_t n, int sending) {
  for (size_t done = 0; done < n;) {
    const ssize_t k = sending ? write(fd, buf + done, n - done) : read(fd, buf + done, n - done);
    if (k <= 0) return -1;
    done += (size_t)k;
  }
  return 0;
}

/* Median round trip of 8 bytes between ranks 0 and 1 over a plain blocking
 * TCP socket: the link's latency without MPI's busy polling. A polling rank
 * that the scheduler has taken off a shared core adds its time off-CPU to
 * the MPI round trip (milliseconds when the cores are oversubscribed); a
 * blocked reader is woken as soon as the data arrives. Rank 1 listens on its
 * first non-loopback IPv4 address (its host's) and sends it to rank 0 over
 * MPI. Returns -1 where the socket cannot be set up. */
static double tcp_rtt_us(int rank) {
  enum { kWarmup = 20, kSamples = 200 };
  struct sockaddr_in addr;
  memset(&addr, 0, sizeof addr);
  int fd = -1, ok = 1;
  if (rank == 1) {
    struct ifaddrs *ifs = NULL, *it;
    if (getifaddrs(&ifs) == 0)
      for (it = ifs; it; it = it->ifa_next)
        if (it->ifa_addr && it->ifa_addr->sa_family == AF_INET &&
            ((struct sockaddr_in*)it->ifa_addr)->sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
          addr = *(struct sockaddr_in*)it->ifa_addr;
          break;
        }
    freeifaddrs(ifs);
    socklen_t len = sizeof addr;
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    ok = addr.sin_family == AF_INET && listener >= 0 &&
         bind(listener, (struct sockaddr*)&addr, sizeof addr) == 0 && listen(listener, 1) == 0 &&
         getsockname(listener, (struct sockaddr*)&addr, &len) == 0;
    MPI_Send(&ok, 1, MPI_INT, 0, 4, MPI_COMM_WORLD);
    MPI_Send(&addr, sizeof addr, MPI_BYTE, 0, 5, MPI_COMM_WORLD);
    if (ok) fd = accept(listener, NULL, NULL);
    if (listener >= 0) close(listener);
  } else {
    MPI_Recv(&ok, 1, MPI_INT, 1, 4, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    MPI_Recv(&addr, sizeof addr, MPI_BYTE, 1, 5, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    if (ok) {
      fd = socket(AF_INET, SOCK_STREAM, 0);
      if (fd >= 0 && connect(fd, (struct sockaddr*)&addr, sizeof addr) != 0) {
        close(fd);
        fd = -1;
      }
    }
  }
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  char msg[8] = {0};
  double samples[kSamples];
  for (int i = 0; i < kWarmup + kSamples; ++i) {
    const double t0 = now();
    const int failed = rank == 0 ? socket_io(fd, msg, 8, 1) || socket_io(fd, msg, 8, 0)
                                 : socket_io(fd, msg, 8, 0) || socket_io(fd, msg, 8, 1);
    if (failed) {
      close(fd);
      return -1;
    }
    if (i >= kWarmup) samples[i - kWarmup] = (now() - t0) * 1e6;
  }
  close(fd);
  qsort(samples, kSamples, sizeof samples[0], compare_doubles);
  return samples[kSamples / 2];
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
    const double link_rtt_us = tcp_rtt_us(rank);
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
      if (link_rtt_us >= 0) printf("tcp_rtt_us %.1f\n", link_rtt_us);
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
