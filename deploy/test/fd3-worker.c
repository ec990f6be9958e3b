// fd3-worker: the smallest worker the bundle tests put in images that have
// no libc of their own (static, glibc) or only musl's (musl-gcc). It takes
// the agent's socket as fd 3 (LISTEN_FDS), says READY=1 over $NOTIFY_SOCKET,
// answers each connection in a forked child (GET /?sleep_ms=N waits N ms
// first, for the drain check), and on SIGTERM stops accepting, waits for
// every child and exits 0. Plain C, no dependencies:
//   gcc -O2 -static -o fd3-worker fd3-worker.c
//   musl-gcc -O2 -o fd3-worker-musl fd3-worker.c
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stopping = 0;

static void on_term(int sig) {
  (void)sig;
  stopping = 1;
}

static void notify(const char* msg) {
  const char* path = getenv("NOTIFY_SOCKET");
  if (path == NULL || path[0] == '\0') return;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  size_t len = strlen(path);
  if (len >= sizeof(addr.sun_path)) return;
  memcpy(addr.sun_path, path, len);
  if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';  // abstract socket
  int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  sendto(fd, msg, strlen(msg), 0, (struct sockaddr*)&addr,
         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
  close(fd);
}

// One request: read the head, wait ?sleep_ms=, answer, close.
static void serve(int conn, const char* who) {
  char req[2048];
  size_t got = 0;
  while (got < sizeof(req) - 1 && !strstr(req, "\r\n\r\n")) {
    ssize_t n = read(conn, req + got, sizeof(req) - 1 - got);
    if (n <= 0) break;
    got += (size_t)n;
    req[got] = '\0';
  }
  req[got] = '\0';
  const char* s = strstr(req, "sleep_ms=");
  if (s != NULL) {
    long ms = strtol(s + 9, NULL, 10);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  char body[256], out[512];
  int blen =
      snprintf(body, sizeof(body), "hello from %s worker %s (pid %d)\n", who,
               getenv("CORRAL_WORKER_ID") ? getenv("CORRAL_WORKER_ID") : "?",
               (int)getppid());
  int olen = snprintf(out, sizeof(out),
                      "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %d\r\nConnection: close\r\n\r\n%s",
                      blen, body);
  for (int off = 0; off < olen;) {
    ssize_t n = write(conn, out + off, (size_t)(olen - off));
    if (n <= 0) break;
    off += (int)n;
  }
  shutdown(conn, SHUT_WR);
  close(conn);
}

int main(int argc, char** argv) {
  const char* who = argc > 1 ? argv[1] : "fd3";
  const char* fds = getenv("LISTEN_FDS");
  if (fds == NULL || atoi(fds) < 1) {
    fprintf(stderr, "fd3-worker: no LISTEN_FDS: run me under corral-agent\n");
    return 2;
  }
  struct sigaction sa = {.sa_handler = on_term};
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  notify("READY=1");
  while (!stopping) {
    while (waitpid(-1, NULL, WNOHANG) > 0) {
    }
    struct pollfd p = {.fd = 3, .events = POLLIN};
    if (poll(&p, 1, 200) <= 0) continue;
    int conn = accept4(3, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0) continue;  // EAGAIN: another worker took it
    pid_t child = fork();
    if (child == 0) {
      // The agent's SIGTERM goes to the whole process group: a request in
      // progress still completes.
      signal(SIGTERM, SIG_IGN);
      close(3);
      serve(conn, who);
      _exit(0);
    }
    close(conn);
  }
  // Draining: no more accepts; every request in progress completes.
  close(3);
  notify("STOPPING=1");
  while (wait(NULL) > 0 || errno == EINTR) {
  }
  return 0;
}
