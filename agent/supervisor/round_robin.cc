#include "agent/supervisor/round_robin.h"

#include <algorithm>
#include <array>
#include <cstring>

namespace corral::agent {
namespace {

using ebpf::kAdd64K;
using ebpf::kAtomicDw;
using ebpf::kCall;
using ebpf::kExit;
using ebpf::kFetchAdd;
using ebpf::kJa;
using ebpf::kJeqK;
using ebpf::kJneK;
using ebpf::kLdImm64;
using ebpf::kMapLookupElem;
using ebpf::kMod64K;
using ebpf::kMov64K;
using ebpf::kMov64X;
using ebpf::kPseudoMapFd;
using ebpf::kSkPass;
using ebpf::kSkSelectReuseport;
using ebpf::kStW;

// Registers: r0 return value, r1-r5 arguments, r6-r9 kept across calls,
// r10 the frame pointer (read only).
enum Reg : uint8_t { R0 = 0, R1, R2, R3, R4, R5, R6, R7, R8, R9, R10 };

// Small builders, one per instruction shape, named like the BPF
// assembler's mnemonics.
EbpfInsn Mov64Reg(Reg dst, Reg src) { return {kMov64X, dst, src, 0, 0}; }
EbpfInsn Mov64Imm(Reg dst, int32_t imm) { return {kMov64K, dst, 0, 0, imm}; }
EbpfInsn Add64Imm(Reg dst, int32_t imm) { return {kAdd64K, dst, 0, 0, imm}; }
EbpfInsn Mod64Imm(Reg dst, int32_t imm) { return {kMod64K, dst, 0, 0, imm}; }
// *(u32 *)(dst + off) = imm
EbpfInsn StoreW(Reg dst, int16_t off, int32_t imm) {
  return {kStW, dst, 0, off, imm};
}
// src = atomic_fetch_add((u64 *)(dst + off), src)
EbpfInsn FetchAdd64(Reg dst, int16_t off, Reg src) {
  return {kAtomicDw, dst, src, off, kFetchAdd};
}
// dst = the map whose fd is `fd`: two instructions (a 64-bit immediate).
void LoadMap(std::vector<EbpfInsn>& p, Reg dst, int fd) {
  p.push_back({kLdImm64, dst, kPseudoMapFd, 0, fd});
  p.push_back({0, 0, 0, 0, 0});
}
// if dst == imm: skip `off` instructions
EbpfInsn JumpIfEqual(Reg dst, int32_t imm, int16_t off) {
  return {kJeqK, dst, 0, off, imm};
}
// if dst != imm: skip `off` instructions
EbpfInsn JumpIfNotEqual(Reg dst, int32_t imm, int16_t off) {
  return {kJneK, dst, 0, off, imm};
}
// skip `off` instructions
EbpfInsn Jump(int16_t off) { return {kJa, 0, 0, off, 0}; }
EbpfInsn Call(int32_t helper) { return {kCall, 0, 0, 0, helper}; }
EbpfInsn Exit() { return {kExit, 0, 0, 0, 0}; }

// Stack slots (below the frame pointer r10).
constexpr int16_t kKeySlot = -4;   // u32 key 0 of the counter map
constexpr int16_t kSlotSlot = -8;  // u32 key into the sockarray (a slot)

// Patches the jump at `from` to land on the next instruction pushed.
void LandHere(std::vector<EbpfInsn>& p, size_t from) {
  p[from].off = static_cast<int16_t>(p.size() - from - 1);
}

}  // namespace

std::vector<EbpfInsn> BuildRoundRobinProgram(int counter_map, int sockets_map,
                                             const std::vector<int>& table) {
  std::vector<EbpfInsn> p;
  const size_t k = std::min(table.size(), kMaxRoundRobinTable);
  if (k > 0) {
    p.push_back(Mov64Reg(R6, R1));          // r6 = ctx (calls clobber r1-r5)
    p.push_back(StoreW(R10, kKeySlot, 0));  // key = 0
    p.push_back(Mov64Reg(R2, R10));         // r2 = &key
    p.push_back(Add64Imm(R2, kKeySlot));
    LoadMap(p, R1, counter_map);        // r1 = counter map
    p.push_back(Call(kMapLookupElem));  // r0 = &counter, or NULL
    const size_t no_counter = p.size();
    p.push_back(JumpIfEqual(R0, 0, 0));  // NULL: to "return SK_PASS"
    p.push_back(Mov64Imm(R1, 1));        // r1 = 1
    p.push_back(FetchAdd64(R0, 0, R1));  // r1 = counter++, atomically
    p.push_back(Mod64Imm(R1, static_cast<int32_t>(k)));  // r1 %= k
    // Jump table: slot = table[r1], stored at kSlotSlot.
    std::vector<size_t> to_select;
    for (size_t i = 0; i + 1 < k; ++i) {
      p.push_back(JumpIfNotEqual(R1, static_cast<int32_t>(i), 2));
      p.push_back(StoreW(R10, kSlotSlot, table[i]));
      to_select.push_back(p.size());
      p.push_back(Jump(0));  // to the select (patched below)
    }
    p.push_back(StoreW(R10, kSlotSlot, table[k - 1]));
    for (size_t from : to_select) LandHere(p, from);
    p.push_back(Mov64Reg(R1, R6));   // r1 = ctx
    LoadMap(p, R2, sockets_map);     // r2 = sockarray
    p.push_back(Mov64Reg(R3, R10));  // r3 = &slot
    p.push_back(Add64Imm(R3, kSlotSlot));
    p.push_back(Mov64Imm(R4, 0));  // r4 = flags 0
    // A failed select (no socket at that key: -ENOENT) leaves no
    // selection, and SK_PASS then lets the kernel hash.
    p.push_back(Call(kSkSelectReuseport));
    LandHere(p, no_counter);
  }
  p.push_back(Mov64Imm(R0, kSkPass));  // return SK_PASS
  p.push_back(Exit());
  return p;
}

std::optional<RoundRobinRun> RunRoundRobinProgram(
    const std::vector<EbpfInsn>& program, int counter_map, uint64_t* counter,
    const std::function<int64_t(int map_fd, uint32_t index)>& select) {
  // A register is a scalar or a pointer; pointers are the few kinds the
  // program uses. kStack values are offsets from the frame pointer.
  enum class Kind { kScalar, kCtx, kStack, kMap, kCounter };
  struct Value {
    Kind kind = Kind::kScalar;
    int64_t v = 0;
  };
  std::array<Value, 11> r{};
  r[R1] = {Kind::kCtx, 0};
  r[R10] = {Kind::kStack, 0};
  std::array<uint8_t, 512> stack{};
  auto stack_at = [&stack](const Value& base,
                           int16_t off) -> std::optional<size_t> {
    const int64_t at = base.v + off + static_cast<int64_t>(stack.size());
    if (base.kind != Kind::kStack || at < 0 ||
        at + 4 > static_cast<int64_t>(stack.size())) {
      return std::nullopt;
    }
    return static_cast<size_t>(at);
  };
  auto load_u32 = [&](const Value& ptr) -> std::optional<uint32_t> {
    std::optional<size_t> at = stack_at(ptr, 0);
    if (!at) return std::nullopt;
    uint32_t v;
    std::memcpy(&v, &stack[*at], 4);
    return v;
  };
  RoundRobinRun run;
  for (size_t pc = 0; pc < program.size(); ++pc) {
    const EbpfInsn& in = program[pc];
    if (in.dst > R10 || in.src > R10) return std::nullopt;
    Value& d = r[in.dst];
    switch (in.code) {
      case kMov64X:
        d = r[in.src];
        break;
      case kMov64K:
        d = {Kind::kScalar, in.imm};
        break;
      case kAdd64K:
        d.v += in.imm;
        break;
      case kMod64K:
        if (d.kind != Kind::kScalar) return std::nullopt;
        if (in.imm != 0) {
          d.v = static_cast<int64_t>(static_cast<uint64_t>(d.v) %
                                     static_cast<uint32_t>(in.imm));
        }
        break;
      case kStW: {
        std::optional<size_t> at = stack_at(d, in.off);
        if (!at) return std::nullopt;
        const uint32_t v =
            static_cast<uint32_t>(in.code == kStW ? in.imm : r[in.src].v);
        std::memcpy(&stack[*at], &v, 4);
        break;
      }
      case kAtomicDw: {
        if (in.imm != kFetchAdd || d.kind != Kind::kCounter || in.off != 0) {
          return std::nullopt;
        }
        const uint64_t old = *counter;
        *counter += static_cast<uint64_t>(r[in.src].v);
        r[in.src] = {Kind::kScalar, static_cast<int64_t>(old)};
        break;
      }
      case kLdImm64:
        if (in.src != kPseudoMapFd || pc + 1 >= program.size()) {
          return std::nullopt;
        }
        d = {Kind::kMap, in.imm};
        ++pc;
        break;
      case kJeqK:
      case kJneK:
        if (d.kind == Kind::kScalar && (d.v == in.imm) == (in.code == kJeqK)) {
          pc += in.off;
        }
        break;
      case kJa:
        pc += in.off;
        break;
      case kCall: {
        if (in.imm == kMapLookupElem) {
          std::optional<uint32_t> key = load_u32(r[R2]);
          if (r[R1].kind != Kind::kMap || !key) return std::nullopt;
          const bool hit = r[R1].v == counter_map && *key == 0 && counter;
          r[R0] = hit ? Value{Kind::kCounter, 0} : Value{Kind::kScalar, 0};
        } else if (in.imm == kSkSelectReuseport) {
          std::optional<uint32_t> index = load_u32(r[R3]);
          if (r[R1].kind != Kind::kCtx || r[R2].kind != Kind::kMap || !index ||
              r[R4].kind != Kind::kScalar || r[R4].v != 0) {
            return std::nullopt;
          }
          const int64_t rc = select(static_cast<int>(r[R2].v), *index);
          if (rc == 0) run.selected = *index;
          r[R0] = {Kind::kScalar, rc};
        } else {
          return std::nullopt;
        }
        for (Reg clobbered : {R1, R2, R3, R4, R5}) r[clobbered] = {};
        break;
      }
      case kExit:
        if (r[R0].kind != Kind::kScalar) return std::nullopt;
        run.verdict = static_cast<uint32_t>(r[R0].v);
        return run;
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;  // fell off the end: the verifier would refuse it
}

std::vector<int> RoundRobinTable(const ReuseportGroupMap& group,
                                 const SteeringTargets& targets) {
  std::vector<int> slots;
  for (uint32_t index : targets.indexes) {
    if (index < group.order().size()) slots.push_back(group.order()[index]);
  }
  return slots;
}

}  // namespace corral::agent
