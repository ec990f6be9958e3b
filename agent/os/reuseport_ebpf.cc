#include "agent/os/reuseport_ebpf.h"

#include <fcntl.h>
#include <linux/bpf.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "agent/os/errors.h"
#include "agent/os/fd.h"

#ifndef SO_ATTACH_REUSEPORT_EBPF
#define SO_ATTACH_REUSEPORT_EBPF 52
#endif

namespace corral::agent {

// The opcodes agent/supervisor/round_robin.cc writes, against the kernel's.
static_assert(ebpf::kMov64X == (BPF_ALU64 | BPF_MOV | BPF_X));
static_assert(ebpf::kMov64K == (BPF_ALU64 | BPF_MOV | BPF_K));
static_assert(ebpf::kAdd64K == (BPF_ALU64 | BPF_ADD | BPF_K));
static_assert(ebpf::kMod64K == (BPF_ALU64 | BPF_MOD | BPF_K));
static_assert(ebpf::kStW == (BPF_ST | BPF_MEM | BPF_W));
static_assert(ebpf::kAtomicDw == (BPF_STX | BPF_ATOMIC | BPF_DW));
static_assert(ebpf::kLdImm64 == (BPF_LD | BPF_IMM | BPF_DW));
static_assert(ebpf::kJeqK == (BPF_JMP | BPF_JEQ | BPF_K));
static_assert(ebpf::kJneK == (BPF_JMP | BPF_JNE | BPF_K));
static_assert(ebpf::kJa == (BPF_JMP | BPF_JA));
static_assert(ebpf::kCall == (BPF_JMP | BPF_CALL));
static_assert(ebpf::kExit == (BPF_JMP | BPF_EXIT));
static_assert(ebpf::kFetchAdd == (BPF_ADD | BPF_FETCH));
static_assert(ebpf::kPseudoMapFd == BPF_PSEUDO_MAP_FD);
static_assert(ebpf::kMapLookupElem == BPF_FUNC_map_lookup_elem);
static_assert(ebpf::kSkSelectReuseport == BPF_FUNC_sk_select_reuseport);
static_assert(ebpf::kSkPass == SK_PASS);

namespace {

// One slot per possible worker (--workers is at most 4096).
constexpr uint32_t kSockarraySize = kMaxRoundRobinTable;

long Bpf(int cmd, bpf_attr* attr) {
  // No glibc wrapper exists for bpf(2).
  return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

// The value of kernel.unprivileged_bpf_disabled, for the error message.
std::string UnprivilegedBpfSetting() {
  const int fd =
      open("/proc/sys/kernel/unprivileged_bpf_disabled", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "?";
  char buf[16] = {};
  const ssize_t n = read(fd, buf, sizeof(buf) - 1);
  close(fd);
  return n > 0 ? std::string(absl::StripAsciiWhitespace(buf)) : "?";
}

// errno of a bpf(2) call as a Status; EPERM and EACCES name the capability.
absl::Status BpfError(int err, const std::string& what) {
  absl::Status s = ErrnoStatus(err, what);
  if (err != EPERM && err != EACCES) return s;
  return absl::PermissionDeniedError(
      absl::StrCat(s.message(), ": loading eBPF needs CAP_BPF or ",
                   "CAP_SYS_ADMIN (kernel.unprivileged_bpf_disabled=",
                   UnprivilegedBpfSetting(), ")"));
}

absl::StatusOr<int> CreateMap(bpf_map_type type, uint32_t value_size,
                              uint32_t entries, const char* what) {
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_type = type;
  attr.key_size = sizeof(uint32_t);
  attr.value_size = value_size;
  attr.max_entries = entries;
  attr.map_flags = 0;
  const long fd = Bpf(BPF_MAP_CREATE, &attr);
  if (fd < 0) return BpfError(errno, what);
  return static_cast<int>(fd);
}

// The verifier's reason for refusing: the last line of its log but the
// statistics it ends with ("processed N insns ...", "verification time").
std::string RefusalReason(const std::string& log) {
  std::string last;
  for (absl::string_view line : absl::StrSplit(log, '\n')) {
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || absl::StartsWith(line, "processed ") ||
        absl::StartsWith(line, "verification time")) {
      continue;
    }
    last = std::string(line);
  }
  return last;
}

}  // namespace

absl::StatusOr<std::unique_ptr<EbpfRoundRobin>> EbpfRoundRobin::Create() {
  absl::StatusOr<int> counter =
      CreateMap(BPF_MAP_TYPE_ARRAY, sizeof(uint64_t), 1,
                "bpf(BPF_MAP_CREATE, BPF_MAP_TYPE_ARRAY)");
  if (!counter.ok()) return counter.status();
  absl::StatusOr<int> sockets = CreateMap(
      BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, sizeof(uint32_t), kSockarraySize,
      "bpf(BPF_MAP_CREATE, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY)");
  if (!sockets.ok()) {
    CloseFd(*counter);
    return sockets.status();
  }
  return std::unique_ptr<EbpfRoundRobin>(
      new EbpfRoundRobin(*counter, *sockets));
}

EbpfRoundRobin::~EbpfRoundRobin() {
  // Programs attached to groups keep their own references to the maps.
  CloseFd(counter_map_);
  CloseFd(sockets_map_);
}

absl::Status EbpfRoundRobin::AddSocket(int slot, int socket_fd) {
  if (slot < 0 || static_cast<uint32_t>(slot) >= kSockarraySize) {
    return absl::OutOfRangeError(absl::StrCat("worker ", slot,
                                              ": past the sockarray's ",
                                              kSockarraySize, " entries"));
  }
  const uint32_t key = static_cast<uint32_t>(slot);
  const uint32_t value = static_cast<uint32_t>(socket_fd);
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.map_fd = static_cast<uint32_t>(sockets_map_);
  attr.key = reinterpret_cast<uint64_t>(&key);
  attr.value = reinterpret_cast<uint64_t>(&value);
  attr.flags = BPF_ANY;
  if (Bpf(BPF_MAP_UPDATE_ELEM, &attr) != 0) {
    return BpfError(errno, "bpf(BPF_MAP_UPDATE_ELEM) on the sockarray");
  }
  return absl::OkStatus();
}

absl::Status EbpfRoundRobin::Attach(int group_fd,
                                    const std::vector<EbpfInsn>& program) {
  std::vector<bpf_insn> insns(program.size());
  for (size_t i = 0; i < program.size(); ++i) {
    // Field by field: dst_reg and src_reg are bit-fields.
    insns[i] = bpf_insn{};
    insns[i].code = program[i].code;
    insns[i].dst_reg = program[i].dst & 0xf;
    insns[i].src_reg = program[i].src & 0xf;
    insns[i].off = program[i].off;
    insns[i].imm = program[i].imm;
  }
  static constexpr char kLicense[] = "GPL";  // sk_select_reuseport is GPL
  bpf_attr attr;
  std::memset(&attr, 0, sizeof(attr));
  attr.prog_type = BPF_PROG_TYPE_SK_REUSEPORT;
  attr.expected_attach_type = BPF_SK_REUSEPORT_SELECT;
  attr.insns = reinterpret_cast<uint64_t>(insns.data());
  attr.insn_cnt = static_cast<uint32_t>(insns.size());
  attr.license = reinterpret_cast<uint64_t>(kLicense);
  // No verifier log first: it slows a long program's load.
  long prog = Bpf(BPF_PROG_LOAD, &attr);
  if (prog < 0) {
    const int err = errno;
    absl::Status s =
        BpfError(err, "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_SK_REUSEPORT)");
    if (err == EPERM) return s;
    // Refused by the verifier: load again with its log, for the reason.
    std::string log(16384, '\0');
    attr.log_buf = reinterpret_cast<uint64_t>(log.data());
    attr.log_size = static_cast<uint32_t>(log.size());
    attr.log_level = 1;
    if (const long again = Bpf(BPF_PROG_LOAD, &attr); again >= 0) {
      CloseFd(static_cast<int>(again));  // accepted the second time?
      return s;
    }
    const std::string why = RefusalReason(log.c_str());
    if (why.empty()) return s;
    return absl::Status(s.code(), absl::StrCat(s.message(), ": ", why));
  }
  const int prog_fd = static_cast<int>(prog);
  // The group keeps its own reference: the fd is closed either way.
  const int rc = setsockopt(group_fd, SOL_SOCKET, SO_ATTACH_REUSEPORT_EBPF,
                            &prog_fd, sizeof(prog_fd));
  const int err = errno;
  CloseFd(prog_fd);
  if (rc != 0) return ErrnoStatus(err, "SO_ATTACH_REUSEPORT_EBPF");
  return absl::OkStatus();
}

}  // namespace corral::agent
