#include "agent/supervisor/steering.h"

#include <algorithm>

namespace corral::agent {
namespace {

// Classic BPF opcodes (linux/filter.h; checked in agent/os/reuseport.cc).
constexpr uint16_t kLdWAbs = 0x20;         // BPF_LD | BPF_W | BPF_ABS
constexpr uint16_t kLdHAbs = 0x28;         // BPF_LD | BPF_H | BPF_ABS
constexpr uint16_t kMulK = 0x24;           // BPF_ALU | BPF_MUL | BPF_K
constexpr uint16_t kRshK = 0x74;           // BPF_ALU | BPF_RSH | BPF_K
constexpr uint16_t kXorX = 0xac;           // BPF_ALU | BPF_XOR | BPF_X
constexpr uint16_t kTax = 0x07;            // BPF_MISC | BPF_TAX
constexpr uint16_t kJeqK = 0x15;           // BPF_JMP | BPF_JEQ | BPF_K
constexpr uint16_t kRetK = 0x06;           // BPF_RET | BPF_K
constexpr uint32_t kNetOff = 0xfff00000u;  // SKF_NET_OFF (-0x100000)
// 2^32 / golden ratio: multiplicative (Fibonacci) hashing, whose top bits
// spread consecutive keys evenly.
constexpr uint32_t kGolden = 0x9e3779b1u;

BpfInsn I(uint16_t code, uint32_t k, uint8_t jt = 0, uint8_t jf = 0) {
  return BpfInsn{code, jt, jf, k};
}

}  // namespace

std::string_view BalanceModeName(BalanceMode mode) {
  switch (mode) {
    case BalanceMode::kShared:
      return "shared";
    case BalanceMode::kReuseport:
      return "reuseport";
    case BalanceMode::kSourceIp:
      return "source-ip";
    case BalanceMode::kRoundRobin:
      return "round-robin";
    case BalanceMode::kAuto:
      return "auto";
  }
  return "?";
}

std::optional<BalanceMode> ParseBalanceMode(std::string_view text) {
  for (BalanceMode m :
       {BalanceMode::kShared, BalanceMode::kReuseport, BalanceMode::kSourceIp,
        BalanceMode::kRoundRobin, BalanceMode::kAuto}) {
    if (text == BalanceModeName(m)) return m;
  }
  return std::nullopt;
}

std::vector<BpfInsn> BuildSteeringProgram(
    BalanceMode mode, bool ipv6, const std::vector<uint32_t>& targets) {
  std::vector<BpfInsn> p;
  const size_t n = std::min(targets.size(), kMaxSteeringTargets);
  if (n <= 1) {
    p.push_back(I(kRetK, n == 0 ? 0 : targets[0]));
    return p;
  }
  if (mode == BalanceMode::kSourceIp) {
    if (ipv6) {
      // The 4 words of the source address (offset 8), folded with xor.
      p.push_back(I(kLdWAbs, kNetOff + 8));
      for (uint32_t off : {12u, 16u, 20u}) {
        p.push_back(I(kTax, 0));
        p.push_back(I(kLdWAbs, kNetOff + off));
        p.push_back(I(kXorX, 0));
      }
    } else {
      p.push_back(I(kLdWAbs, kNetOff + 12));  // IPv4 source address
    }
  } else {
    // The TCP source port, right after the IP header. (The program's own
    // offset 0 is past the TCP header here: measured, it reads nothing.)
    p.push_back(I(kLdHAbs, kNetOff + (ipv6 ? 40 : 20)));
  }
  // index = (top 16 bits of hash * n) >> 16, in [0, n).
  p.push_back(I(kMulK, kGolden));
  p.push_back(I(kRshK, 16));
  p.push_back(I(kMulK, static_cast<uint32_t>(n)));
  p.push_back(I(kRshK, 16));
  // Jump table: index i -> targets[i].
  for (size_t i = 0; i + 1 < n; ++i) {
    p.push_back(I(kJeqK, static_cast<uint32_t>(i), 0, 1));
    p.push_back(I(kRetK, targets[i]));
  }
  p.push_back(I(kRetK, targets[n - 1]));
  return p;
}

std::optional<uint32_t> RunSteeringProgram(const std::vector<BpfInsn>& program,
                                           const std::vector<uint8_t>& net) {
  uint32_t a = 0, x = 0;
  auto load = [&net](uint32_t k, size_t size) -> std::optional<uint32_t> {
    if (k < kNetOff) return std::nullopt;
    const size_t off = k - kNetOff;
    if (off + size > net.size()) return std::nullopt;
    uint32_t v = 0;
    for (size_t i = 0; i < size; ++i) v = (v << 8) | net[off + i];
    return v;
  };
  for (size_t pc = 0; pc < program.size(); ++pc) {
    const BpfInsn& in = program[pc];
    switch (in.code) {
      case kLdWAbs:
      case kLdHAbs: {
        std::optional<uint32_t> v = load(in.k, in.code == kLdWAbs ? 4 : 2);
        if (!v) return std::nullopt;
        a = *v;
        break;
      }
      case kMulK:
        a *= in.k;
        break;
      case kRshK:
        a >>= in.k;
        break;
      case kXorX:
        a ^= x;
        break;
      case kTax:
        x = a;
        break;
      case kJeqK:
        pc += a == in.k ? in.jt : in.jf;
        break;
      case kRetK:
        return in.k;
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

void ReuseportGroupMap::Join(int slot) {
  if (!Has(slot)) order_.push_back(slot);
}

void ReuseportGroupMap::Leave(int slot) {
  std::optional<uint32_t> i = IndexOf(slot);
  if (!i) return;
  order_[*i] = order_.back();
  order_.pop_back();
}

std::optional<uint32_t> ReuseportGroupMap::IndexOf(int slot) const {
  for (size_t i = 0; i < order_.size(); ++i) {
    if (order_[i] == slot) return static_cast<uint32_t>(i);
  }
  return std::nullopt;
}

SteeringTargets ChooseSteeringTargets(const ReuseportGroupMap& group,
                                      const std::vector<WorkerView>& workers,
                                      int target_workers) {
  std::vector<int> ready, live;
  for (int slot : group.order()) {
    if (slot >= target_workers) continue;
    live.push_back(slot);
    for (const WorkerView& w : workers) {
      // A READY worker that takes no connection (AcceptWatch) gets none.
      if (w.slot == slot && w.state == WorkerState::kReady && w.accepting) {
        ready.push_back(slot);
        break;
      }
    }
  }
  std::vector<int>& use = !ready.empty() ? ready : live;
  if (use.empty()) use = group.order();
  std::sort(use.begin(), use.end());
  SteeringTargets out;
  out.ready = !ready.empty();
  for (int slot : use) out.indexes.push_back(*group.IndexOf(slot));
  return out;
}

}  // namespace corral::agent
