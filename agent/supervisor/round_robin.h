// --balance=round-robin: an eBPF program (BPF_PROG_TYPE_SK_REUSEPORT) that
// hands new connections to the steering targets' sockets in turn. Per
// reuseport group the kernel holds two maps for the agent's life:
//   counter: BPF_MAP_TYPE_ARRAY, one u64 (the turn);
//   sockets: BPF_MAP_TYPE_REUSEPORT_SOCKARRAY, slot s's socket at index s
//            (written when the slot's socket opens; the kernel drops it
//            when the socket closes).
// For each SYN the program does
//   n = atomic_fetch_add(&counter, 1) % k
//   key = table[n]                      (a jump table of immediates)
//   bpf_sk_select_reuseport(ctx, sockets, &key, 0)
//   return SK_PASS
// and with k == 0, no counter or a failed select it returns SK_PASS without
// a selection, which makes the kernel pick a member by its own hash: a SYN
// is never dropped.
//
// The table (the READY slots) is baked into the program, so a change of the
// READY set is a new program swapped in by one setsockopt: the switch is
// atomic, as with the classic program (steering.h). (A socket can be in one
// sockarray slot only, so the sockarray cannot be double-buffered; the
// kernel refuses a second insert with EBUSY.) This file is the pure part:
// the instructions, a small interpreter for tests and the table; the bpf(2)
// calls are in agent/os/reuseport_ebpf.h.
#ifndef CORRAL_AGENT_SUPERVISOR_ROUND_ROBIN_H_
#define CORRAL_AGENT_SUPERVISOR_ROUND_ROBIN_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "agent/supervisor/steering.h"

namespace corral::agent {

namespace ebpf {
// The eBPF opcodes, helper ids and verdict the program uses (linux/bpf.h,
// linux/bpf_common.h; agent/os/reuseport_ebpf.cc checks each against the
// kernel's headers).
inline constexpr uint8_t kMov64X = 0xbf;      // BPF_ALU64 | BPF_MOV | BPF_X
inline constexpr uint8_t kMov64K = 0xb7;      // BPF_ALU64 | BPF_MOV | BPF_K
inline constexpr uint8_t kAdd64K = 0x07;      // BPF_ALU64 | BPF_ADD | BPF_K
inline constexpr uint8_t kMod64K = 0x97;      // BPF_ALU64 | BPF_MOD | BPF_K
inline constexpr uint8_t kStW = 0x62;         // BPF_ST | BPF_MEM | BPF_W
inline constexpr uint8_t kAtomicDw = 0xdb;    // BPF_STX | BPF_ATOMIC | BPF_DW
inline constexpr uint8_t kLdImm64 = 0x18;     // BPF_LD | BPF_IMM | BPF_DW
inline constexpr uint8_t kJeqK = 0x15;        // BPF_JMP | BPF_JEQ | BPF_K
inline constexpr uint8_t kJneK = 0x55;        // BPF_JMP | BPF_JNE | BPF_K
inline constexpr uint8_t kJa = 0x05;          // BPF_JMP | BPF_JA
inline constexpr uint8_t kCall = 0x85;        // BPF_JMP | BPF_CALL
inline constexpr uint8_t kExit = 0x95;        // BPF_JMP | BPF_EXIT
inline constexpr int32_t kFetchAdd = 0x01;    // BPF_ADD | BPF_FETCH
inline constexpr uint8_t kPseudoMapFd = 1;    // BPF_PSEUDO_MAP_FD
inline constexpr int32_t kMapLookupElem = 1;  // BPF_FUNC_map_lookup_elem
// BPF_FUNC_sk_select_reuseport
inline constexpr int32_t kSkSelectReuseport = 82;
inline constexpr uint32_t kSkPass = 1;  // SK_PASS

}  // namespace ebpf

// One eBPF instruction: the fields of the kernel's struct bpf_insn, which
// agent/os/reuseport_ebpf.cc copies field by field (the register nibbles
// are bit-fields there, so no layout is assumed here).
struct EbpfInsn {
  uint8_t code = 0;
  uint8_t dst = 0;  // register 0..10
  uint8_t src = 0;  // register, or BPF_PSEUDO_MAP_FD in a map load
  int16_t off = 0;
  int32_t imm = 0;
  bool operator==(const EbpfInsn&) const = default;
};

// The program for one reuseport group: `counter_map` and `sockets_map` are
// the fds of the two maps (the kernel swaps them for map pointers at load),
// `table` the sockarray keys (slots) to take in turn, at most
// kMaxRoundRobinTable. With an empty table the program is "return SK_PASS"
// (the kernel's hash picks).
inline constexpr size_t kMaxRoundRobinTable = 4096;
std::vector<EbpfInsn> BuildRoundRobinProgram(int counter_map, int sockets_map,
                                             const std::vector<int>& table);

// What a run of the program did, for tests.
struct RoundRobinRun {
  uint32_t verdict = 0;              // SK_PASS = 1
  std::optional<uint32_t> selected;  // the key of a successful select
  bool operator==(const RoundRobinRun&) const = default;
};

// Runs `program` the way the kernel would, for the instructions
// BuildRoundRobinProgram emits: `counter` stands for the counter map's one
// value (nullptr: the lookup fails), `select(map_fd, index)` for
// bpf_sk_select_reuseport (its return value: 0 or a negative errno).
// nullopt on an instruction it does not know or a bad memory access.
std::optional<RoundRobinRun> RunRoundRobinProgram(
    const std::vector<EbpfInsn>& program, int counter_map, uint64_t* counter,
    const std::function<int64_t(int map_fd, uint32_t index)>& select);

// The program's table: the slots of the steering targets
// (ChooseSteeringTargets), in slot order.
std::vector<int> RoundRobinTable(const ReuseportGroupMap& group,
                                 const SteeringTargets& targets);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_ROUND_ROBIN_H_
