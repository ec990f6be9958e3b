"""Where the repository and the binaries under test are.

CMake passes each binary's path in an environment variable; without it
(a test run by hand) the default is the binary in $CORRAL_BUILD_DIR, else
build/ at the repository root, whatever the current directory is.
"""

import os

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD_DIR = os.environ.get("CORRAL_BUILD_DIR", os.path.join(REPO, "build"))

# variable -> path under the build directory
_DEFAULTS = {
    "CORRAL_AGENT": "agent/corral-agent",
    "CORRAL_TEST_WORKER": "tests/worker/corral-test-worker",
    "CORRAL_WORKER": "worker/corral-worker",
    "CORRALCTL": "ctl/corralctl",
    "CORRAL_CONTROL_BENCH": "bench/control/corral-control-bench",
}


def binary(var, build_dir=None):
    """The path of a binary: $var, else its place under build_dir (default
    BUILD_DIR). Not checked; see missing()."""
    if os.environ.get(var):
        return os.environ[var]
    return os.path.join(build_dir or BUILD_DIR, _DEFAULTS[var])


def build_dir(arg=None):
    """A --build argument as an absolute path: None = BUILD_DIR; a relative
    path is taken from the current directory when it exists there, else from
    the repository root (so `--build build` works from anywhere)."""
    if arg is None:
        return BUILD_DIR
    if os.path.isabs(arg):
        return arg
    here = os.path.abspath(arg)
    from_repo = os.path.join(REPO, arg)
    if os.path.isdir(here) or not os.path.isdir(from_repo):
        return here
    return from_repo


def missing(*paths):
    """The paths (of `paths`) that are not executable files."""
    return [p for p in paths if not (os.path.isfile(p) and os.access(p, os.X_OK))]


def require(*pairs):
    """Raises AssertionError naming every (variable, path) that is not an
    executable file, and how to get it."""
    bad = [f"{var}={path}" for var, path in pairs if missing(path)]
    if bad:
        raise AssertionError(f"not an executable file: {', '.join(bad)}; "
                             f"build first (cmake --build {BUILD_DIR}) or set the variable")


def source(*parts):
    """A path in the source tree."""
    return os.path.join(REPO, *parts)
