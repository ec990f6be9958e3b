"""corral's Python test library: one place for what every Python test and
benchmark needs (Python 3 stdlib; python3-grpcio for grpc_health only).

  paths       where the binaries are (env vars set by CMake, else build/)
  waiting     wait_for / hold: poll a condition with a deadline, never sleep
  procfs      processes and sockets seen from the host through /proc
  processes   start children that die with us; stop them by pid
  events      the agent's JSON log lines as events, waited on
  agent       run corral-agent (as PID 1 or plainly); it binds port 0 itself
              and the test reads the address from its log
  http_client an HTTP/1.1 client and load generator that name every failure
  grpc_health grpc.health.v1 Check/Watch without generated code
  redis       redis-server on a port it got, a tiny RESP client
  workers     worker processes without the agent; a notify socket
  cgroups     real cgroup v1 directories for sizing tests
  podman      podman runs, images and logs, removed by id
  testcase    the unittest base class; runner: the ctest entry point

Import it with tests/ on sys.path (CMake sets PYTHONPATH; scripts outside
tests/ add it themselves).
"""
