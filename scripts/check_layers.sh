#!/bin/sh
# Fails when agent code outside agent/os calls the kernel. agent/os is the
# only code that may (docs: /work/shared/STYLE.md, "Layout and names"); the
# supervisor, the agent core, the gRPC and HTTP layers reach processes,
# sockets, pipes and time through its interfaces. CMake already keeps the
# supervisor from linking the os library; this catches the rest: a libc
# system-call wrapper called by name, or a header that exists to declare
# them. Comments and string literals are not searched.
#
# Usage: check_layers.sh [SOURCE_ROOT]   (run by ctest as layering.no_syscalls)
set -eu
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
dirs="agent/core agent/rpc agent/http agent/supervisor"

headers='unistd|fcntl|sched|dirent|poll|netdb|sys/(socket|stat|un|wait|prctl|signalfd|epoll|syscall|ioctl|mman|resource)|netinet/[a-z_]+|arpa/inet'
calls='kill|killpg|close|close_range|pipe|pipe2|socketpair|socket|bind|listen|connect|accept|accept4|shutdown|fcntl|ioctl|read|write|readv|writev|recv|recvmsg|recvfrom|send|sendmsg|sendto|open|openat|creat|unlink|mkdir|chmod|fchmod|stat|lstat|fstat|readlink|opendir|dup|dup2|dup3|fork|vfork|execve|execv|execvp|execvpe|waitpid|waitid|wait|getpid|getppid|geteuid|getuid|getegid|getgid|setsid|setpgid|prctl|sysconf|sched_getaffinity|getsockopt|setsockopt|getsockname|getpeername|signalfd|sigprocmask|pthread_sigmask|syscall|getenv|setenv|clock_gettime'

# "file: pattern" lines to accept anyway (ERE, matched against the report
# line). Keep it empty; every entry needs a comment saying why.
allow=''

found=$(cd "$root" && find $dirs -name '*.cc' -o -name '*.h' | sort | xargs perl -ne '
  BEGIN { $h = shift @ARGV; $c = shift @ARGV; }
  s{"(?:[^"\\]|\\.)*"}{""}g;  # string literals
  s{//.*$}{};                 # line comments
  if (m{^\s*#\s*include\s*<(?:$h)\.h>} ||
      m{(?<![\w.])(?<!->)(?<!\w::)\b(?:$c)\s*\(} ||
      m{\benviron\b}) {
    chomp; print "$ARGV:$.: $_\n";
  }
  close ARGV if eof;' "$headers" "$calls")

if [ -n "$allow" ] && [ -n "$found" ]; then
  found=$(printf '%s\n' "$found" | grep -Ev "$allow" || true)
fi
if [ -n "$found" ]; then
  echo "kernel calls outside agent/os (move them behind an agent/os interface):"
  printf '%s\n' "$found"
  exit 1
fi
echo "ok: no kernel calls in $dirs"
