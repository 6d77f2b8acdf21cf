/* qccl_delayline: a user-space Ethernet switch over N tap devices that adds a
 * one-way delay and limits the rate of each host's downlink. It stands in for
 * sch_netem, which the kernel the netem benchmark was written on lacks
 * (docs/netem.md, "Latency: the delay line").
 *
 *   qccl_delayline [-r RATE_BIT_S] [-d DELAY_US] [-q QUEUE_BYTES] [-P RT_PRIO] TAP...
 *
 * Creates one tap (IFF_TAP | IFF_NO_PI) per name (2..16), prints "ready" on
 * stdout, and switches frames between them until SIGTERM or SIGINT (or its
 * parent's death); then prints per-port counters and its CPU time on stderr
 * and exits. The taps are not persistent: they vanish with the process. The
 * caller moves each tap into its host's network namespace and configures it
 * there; a tap keeps working for the fd holder across namespaces.
 *
 * Model of port p's downlink (what host p receives). A frame read at time t
 * from another port reaches the switch egress at t + DELAY, waits behind the
 * frames queued there before it, and is written to tap p when its
 * serialization at RATE ends:
 *   start = max(t + DELAY, busy_until[p]);  deliver = busy_until[p] = start + 8 len / RATE
 * The frame is tail-dropped when the backlog it would wait behind,
 * start - (t + DELAY), exceeds QUEUE_BYTES at RATE. DELAY is the same for
 * every frame, so frames reach an egress in the order they were read, and the
 * deliver times of one port never decrease: one FIFO per port, and the switch
 * sleeps until the earliest head is due. Times are virtual: when the switch
 * runs late (off-CPU), the frames already due go out at once and the link
 * catches up instead of losing the time. The uplink (what a host sends) is
 * limited on the host side, by tbf on the tap in the host's namespace.
 * RATE 0 means no rate limit (delay only). Single thread, ppoll with a
 * nanosecond timeout on CLOCK_MONOTONIC. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 16
#define MAX_FRAME (65536 + 64) /* MTU up to 65535 plus the Ethernet header */
#define MAX_MACS 256
#define READ_BURST 64 /* frames read from one port per wake-up, so deliveries stay on time */

struct frame {
  struct frame* next;
  uint64_t deliver_ns;
  size_t len;
  unsigned char data[];
};

struct port {
  const char* name;
  int fd;
  struct frame *head, *tail; /* egress FIFO, deliver_ns non-decreasing */
  uint64_t busy_until_ns;    /* when the last queued frame's serialization ends */
  unsigned long long rx_frames, rx_bytes, tx_frames, tx_bytes, queue_drops, write_drops;
  uint64_t late_ns_sum, late_ns_max; /* delivery time past the schedule: the switch's own lag */
};

struct mac_entry {
  unsigned char mac[6];
  int port;
};

static struct port ports[MAX_PORTS];
static int nports;
static struct mac_entry macs[MAX_MACS];
static int nmacs;
static double rate_bit_s; /* 0: unlimited */
static uint64_t delay_ns; /* one way, added to every frame */
static uint64_t queue_ns; /* QUEUE_BYTES at RATE: the longest backlog a frame joins */
static volatile sig_atomic_t stop;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_stop(int sig) {
  (void)sig;
  stop = 1;
}

static int open_tap(const char* name) {
  const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    fprintf(stderr, "qccl_delayline: open /dev/net/tun: %s\n", strerror(errno));
    return -1;
  }
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "qccl_delayline: create tap %s: %s\n", name, strerror(errno));
    close(fd);
    return -1;
  }
  return fd;
}

/* The port a MAC address was last seen on, -1 if not seen. */
static int mac_port(const unsigned char* mac) {
  for (int i = 0; i < nmacs; ++i)
    if (memcmp(macs[i].mac, mac, 6) == 0) return macs[i].port;
  return -1;
}

static void learn(const unsigned char* mac, int port) {
  if (mac[0] & 1) return; /* a group address is never a source */
  for (int i = 0; i < nmacs; ++i)
    if (memcmp(macs[i].mac, mac, 6) == 0) {
      macs[i].port = port;
      return;
    }
  if (nmacs < MAX_MACS) {
    memcpy(macs[nmacs].mac, mac, 6);
    macs[nmacs++].port = port;
  }
}

/* Queues a copy of a frame read at arrival_ns for port p's downlink (see the
 * model at the top), or drops it when the egress backlog is full. */
static void enqueue(struct port* p, const unsigned char* data, size_t len, uint64_t arrival_ns) {
  const uint64_t at_egress = arrival_ns + delay_ns;
  const uint64_t start = p->busy_until_ns > at_egress ? p->busy_until_ns : at_egress;
  if (rate_bit_s > 0 && start - at_egress > queue_ns) {
    ++p->queue_drops;
    return;
  }
  struct frame* f = malloc(sizeof *f + len);
  if (f == NULL) {
    ++p->queue_drops;
    return;
  }
  const uint64_t serialize_ns = rate_bit_s > 0 ? (uint64_t)(8.0 * len / rate_bit_s * 1e9) : 0;
  f->next = NULL;
  f->deliver_ns = p->busy_until_ns = start + serialize_ns;
  f->len = len;
  memcpy(f->data, data, len);
  if (p->tail)
    p->tail->next = f;
  else
    p->head = f;
  p->tail = f;
}

/* Forwards a frame read on port `in`: to the port its destination was learnt
 * on, or to every other port (broadcast, multicast, not yet learnt). */
static void forward(int in, const unsigned char* data, size_t len, uint64_t arrival_ns) {
  if (len < 14) return; /* not an Ethernet frame */
  learn(data + 6, in);
  const int out = (data[0] & 1) ? -1 : mac_port(data);
  if (out == in) return;
  for (int p = 0; p < nports; ++p)
    if (p != in && (out < 0 || p == out)) enqueue(&ports[p], data, len, arrival_ns);
}

static void read_port(int in) {
  static unsigned char buf[MAX_FRAME];
  struct port* p = &ports[in];
  for (int i = 0; i < READ_BURST; ++i) {
    const ssize_t n = read(p->fd, buf, sizeof buf);
    if (n <= 0) return; /* EAGAIN: drained; EIO: the interface is down */
    ++p->rx_frames;
    p->rx_bytes += (unsigned long long)n;
    forward(in, buf, (size_t)n, now_ns());
  }
}

/* Writes every frame due by now; returns the earliest deliver time still
 * queued, or UINT64_MAX when all queues are empty. */
static uint64_t deliver_due(uint64_t now) {
  uint64_t next = UINT64_MAX;
  for (int i = 0; i < nports; ++i) {
    struct port* p = &ports[i];
    while (p->head && p->head->deliver_ns <= now) {
      struct frame* f = p->head;
      const uint64_t late_ns = now - f->deliver_ns;
      p->late_ns_sum += late_ns;
      if (late_ns > p->late_ns_max) p->late_ns_max = late_ns;
      /* A tap write hands the frame to the host's stack (no blocking); it
       * fails only while the interface is down. */
      if (write(p->fd, f->data, f->len) == (ssize_t)f->len) {
        ++p->tx_frames;
        p->tx_bytes += f->len;
      } else {
        ++p->write_drops;
      }
      p->head = f->next;
      if (p->head == NULL) p->tail = NULL;
      free(f);
    }
    if (p->head && p->head->deliver_ns < next) next = p->head->deliver_ns;
  }
  return next;
}

static void print_stats(uint64_t wall_ns) {
  for (int i = 0; i < nports; ++i) {
    const struct port* p = &ports[i];
    fprintf(stderr,
            "qccl_delayline: port %s rx_frames %llu rx_bytes %llu tx_frames %llu tx_bytes %llu "
            "queue_drops %llu write_drops %llu late_us_mean %.1f late_us_max %.1f\n",
            p->name, p->rx_frames, p->rx_bytes, p->tx_frames, p->tx_bytes, p->queue_drops,
            p->write_drops, p->late_ns_sum * 1e-3 / (p->tx_frames + p->write_drops + 1e-9),
            p->late_ns_max * 1e-3);
  }
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  const double cpu_s = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec * 1e-6 +
                       (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec * 1e-6;
  fprintf(stderr, "qccl_delayline: cpu_s %.3f wall_s %.3f\n", cpu_s, wall_ns * 1e-9);
}

static void usage(void) {
  fprintf(stderr,
          "usage: qccl_delayline [-r RATE_BIT_S] [-d DELAY_US] [-q QUEUE_BYTES] [-P RT_PRIO] "
          "TAP...\n"
          "  -r  downlink rate per port in bit/s (default 0: unlimited)\n"
          "  -d  one-way delay in microseconds added to every frame (default 0)\n"
          "  -q  egress queue per port in bytes, tail drop beyond (default 4194304)\n"
          "  -P  run SCHED_FIFO at this priority (default 0: normal scheduling)\n"
          "  TAP 2..%d tap names to create, one port each\n",
          MAX_PORTS);
}

/* Parses a non-negative number; exits with a message naming the option. */
static double parse_number(const char* text, char option) {
  char* end = NULL;
  errno = 0;
  const double v = strtod(text, &end);
  if (errno || end == text || *end != 0 || !(v >= 0)) {
    fprintf(stderr, "qccl_delayline: -%c %s: expected a non-negative number\n", option, text);
    exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  double queue_bytes = 4 << 20;
  int rt_prio = 0;
  for (int opt; (opt = getopt(argc, argv, "r:d:q:P:h")) != -1;) {
    switch (opt) {
      case 'r': rate_bit_s = parse_number(optarg, 'r'); break;
      case 'd': delay_ns = (uint64_t)(parse_number(optarg, 'd') * 1e3); break;
      case 'q': queue_bytes = parse_number(optarg, 'q'); break;
      case 'P': rt_prio = (int)parse_number(optarg, 'P'); break;
      default: usage(); return opt == 'h' ? 0 : 2;
    }
  }
  nports = argc - optind;
  if (nports < 2 || nports > MAX_PORTS) {
    fprintf(stderr, "qccl_delayline: %d tap names given, expected 2..%d\n", nports, MAX_PORTS);
    usage();
    return 2;
  }
  if (queue_bytes < MAX_FRAME) {
    fprintf(stderr, "qccl_delayline: -q %.0f: the queue must hold a frame of %d bytes\n",
            queue_bytes, MAX_FRAME);
    return 2;
  }
  queue_ns = rate_bit_s > 0 ? (uint64_t)(8.0 * queue_bytes / rate_bit_s * 1e9) : 0;

  /* SIGTERM/SIGINT are blocked except inside ppoll, so a stop request always
   * wakes the loop. The parent's death (a killed benchmark script) stops it
   * too, which removes the taps. */
  sigset_t blocked, during_poll;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigprocmask(SIG_BLOCK, &blocked, &during_poll);
  sigdelset(&during_poll, SIGTERM);
  sigdelset(&during_poll, SIGINT);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_stop;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  /* Wake-ups are deadlines of a few microseconds' precision; the default
   * 50 us timer slack of a normal thread would add to every delay. */
  prctl(PR_SET_TIMERSLACK, 1UL);
  if (rt_prio > 0) {
    const struct sched_param sp = {.sched_priority = rt_prio};
    if (sched_setscheduler(0, SCHED_FIFO, &sp) != 0)
      fprintf(stderr, "qccl_delayline: warning: SCHED_FIFO %d: %s; normal scheduling\n", rt_prio,
              strerror(errno));
  }

  struct pollfd fds[MAX_PORTS];
  for (int i = 0; i < nports; ++i) {
    ports[i].name = argv[optind + i];
    if (strlen(ports[i].name) >= IFNAMSIZ) {
      fprintf(stderr, "qccl_delayline: tap name %s: at most %d characters\n", ports[i].name,
              IFNAMSIZ - 1);
      return 2;
    }
    ports[i].fd = open_tap(ports[i].name);
    if (ports[i].fd < 0) return 1;
    fds[i].fd = ports[i].fd;
    fds[i].events = POLLIN;
  }
  printf("ready\n");
  fflush(stdout);

  const uint64_t t0 = now_ns();
  while (!stop) {
    const uint64_t now = now_ns();
    const uint64_t next = deliver_due(now);
    struct timespec timeout, *wait = NULL;
    if (next != UINT64_MAX) {
      const uint64_t ns = next > now ? next - now : 0;
      timeout.tv_sec = (time_t)(ns / 1000000000u);
      timeout.tv_nsec = (long)(ns % 1000000000u);
      wait = &timeout;
    }
    const int ready = ppoll(fds, (nfds_t)nports, wait, &during_poll);
    if (ready < 0 && errno != EINTR) {
      fprintf(stderr, "qccl_delayline: poll: %s\n", strerror(errno));
      break;
    }
    for (int i = 0; ready > 0 && i < nports; ++i)
      if (fds[i].revents & POLLIN) read_port(i);
  }
  print_stats(now_ns() - t0);
  for (int i = 0; i < nports; ++i) {
    while (ports[i].head) {
      struct frame* f = ports[i].head;
      ports[i].head = f->next;
      free(f);
    }
    close(ports[i].fd);
  }
  return 0;
}
