// Trimming the agent's resident set to what it runs after startup.
//
// Most of the agent's RSS is not its own memory but pages of the shared
// libraries it maps (gRPC, protobuf, OpenSSL, libstdc++): clean pages of the
// page cache, and much of that code runs only once, at startup (plugin
// registration, descriptor building, server construction), then stays mapped
// for the life of PID 1. docs/BENCHMARKS.md has the breakdown.
#ifndef CORRAL_AGENT_OS_RESIDENT_CODE_H_
#define CORRAL_AGENT_OS_RESIDENT_CODE_H_

#include <cstdint>

#include "absl/status/statusor.h"

namespace corral::agent {

// Unmaps (MADV_DONTNEED) every resident page of this process's read-only,
// private file mappings that holds no private copy: program and library
// code and read-only data, exactly as in the file (none swapped out). Nothing
// is lost: such a page comes back from the page cache (a minor fault) the next
// time it is used, so only the pages still in use return to the RSS. Mappings
// that are writable, shared, anonymous, or hold a private copy of any page
// (e.g. relocated read-only data) are left alone. Returns the KiB that were
// resident in the mappings it dropped. Thread safe (other threads only take
// a fault). Call it once startup is over.
absl::StatusOr<int64_t> DropStartupCodePages();

}  // namespace corral::agent

#endif  // CORRAL_AGENT_OS_RESIDENT_CODE_H_
