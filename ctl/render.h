// How corralctl shows things: tables, sizes, durations, JSON.
#ifndef CORRAL_CTL_RENDER_H_
#define CORRAL_CTL_RENDER_H_

#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <cstdint>
#include <string>
#include <vector>

#include "corral/v1/agent.pb.h"
#include "ctl/json_out.h"

namespace corral::ctl {

// Columns padded to their widest cell, two spaces apart; the last column is
// not padded.
class Table {
 public:
  explicit Table(std::vector<std::string> header);
  void AddRow(std::vector<std::string> row);
  std::string Render() const;

 private:
  std::vector<std::vector<std::string>> rows_;
};

// 1536 -> "1.5Ki", 47316992 -> "45.1Mi"; 0 -> "-".
std::string FormatBytes(int64_t bytes);
// 192 -> "3m12s", 7500 -> "2h05m", 0.4 -> "0s".
std::string FormatDuration(double seconds);
// Time since `t`; "-" when unset.
std::string Since(const google::protobuf::Timestamp& t);
// "READY".
std::string StateName(corral::v1::WorkerState state);
std::string AgentStateName(corral::v1::AgentState state);
// What to know about the worker: a READY worker that takes no connection,
// a slot a drain stopped (and what brings it back), else its STATUS= text,
// else how its last process ended.
std::string WorkerNote(const corral::v1::GetStatusResponse& status,
                       const corral::v1::Worker& w);
// "READY", or "READY (not accepting)".
std::string WorkerStateText(const corral::v1::Worker& w);
// `describe`: one worker in depth.
std::string DescribeText(const corral::v1::DescribeWorkerResponse& d);
// The worker table of `ps` and `status`.
std::string WorkerTable(const corral::v1::GetStatusResponse& status);
// Writes `text` to stdout and flushes (for streams read by other programs).
void Print(const std::string& text);

}  // namespace corral::ctl

#endif  // CORRAL_CTL_RENDER_H_
