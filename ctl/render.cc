#include "ctl/render.h"

#include <google/protobuf/util/time_util.h>

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace corral::ctl {

namespace {

// Columns on screen: ANSI color sequences (ESC [ ... m) take none.
size_t VisibleWidth(const std::string& cell) {
  size_t width = 0;
  for (size_t i = 0; i < cell.size(); ++i) {
    if (cell[i] == '\x1b') {
      while (i < cell.size() && cell[i] != 'm') ++i;
      continue;
    }
    // UTF-8 continuation bytes take no column of their own.
    if ((static_cast<unsigned char>(cell[i]) & 0xC0) != 0x80) ++width;
  }
  return width;
}

}  // namespace

Table::Table(std::vector<std::string> header) {
  rows_.push_back(std::move(header));
}

void Table::AddRow(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

std::string Table::Render() const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    if (widths.size() < row.size()) widths.resize(row.size(), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], VisibleWidth(row[i]));
    }
  }
  std::string out;
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) {
        line.append(widths[i] - VisibleWidth(row[i]) + 2, ' ');
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string FormatBytes(int64_t bytes) {
  if (bytes <= 0) return "-";
  const char* units[] = {"B", "Ki", "Mi", "Gi", "Ti"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  if (unit == 0) return absl::StrCat(bytes, "B");
  return absl::StrFormat("%.1f%s", value, units[unit]);
}

std::string FormatDuration(double seconds) {
  const int64_t s = static_cast<int64_t>(seconds);
  if (s < 60) return absl::StrCat(s, "s");
  if (s < 3600) return absl::StrFormat("%dm%02ds", s / 60, s % 60);
  if (s < 86400) return absl::StrFormat("%dh%02dm", s / 3600, s % 3600 / 60);
  return absl::StrFormat("%dd%02dh", s / 86400, s % 86400 / 3600);
}

std::string Since(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  using google::protobuf::util::TimeUtil;
  const auto age = TimeUtil::GetCurrentTime() - t;
  return FormatDuration(
      std::max<double>(0, TimeUtil::DurationToMilliseconds(age) / 1000.0));
}

std::string StateName(corral::v1::WorkerState state) {
  std::string name = corral::v1::WorkerState_Name(state);
  const std::string prefix = "WORKER_STATE_";
  return name.rfind(prefix, 0) == 0 ? name.substr(prefix.size()) : name;
}

std::string AgentStateName(corral::v1::AgentState state) {
  switch (state) {
    case corral::v1::AGENT_STATE_RUNNING:
      return "running";
    case corral::v1::AGENT_STATE_DRAINING:
      return "drained";
    case corral::v1::AGENT_STATE_STOPPING:
      return "stopping";
    default:
      return "unknown";
  }
}

std::string WorkerNote(const corral::v1::GetStatusResponse& status,
                       const corral::v1::Worker& w) {
  if (w.not_accepting()) {
    return "connections wait: does the app accept on fd 3 (LISTEN_FDS)?";
  }
  if (w.state() == corral::v1::WORKER_STATE_STOPPED &&
      status.state() == corral::v1::AGENT_STATE_DRAINING) {
    return "drained: corralctl resume brings it back";
  }
  if (w.pid() != 0 && !w.status().empty()) return w.status();
  return w.last_exit().empty() ? "" : "last: " + w.last_exit();
}

std::string DescribeText(const corral::v1::DescribeWorkerResponse& d) {
  const corral::v1::Worker& w = d.worker();
  std::vector<std::pair<std::string, std::string>> rows;
  struct {
    std::vector<std::pair<std::string, std::string>>* rows;
    void AddRow(std::pair<std::string, std::string> r) {
      rows->push_back(std::move(r));
    }
  } table{&rows};
  table.AddRow({"worker", absl::StrFormat("%d (generation %d)", w.slot(),
                                          w.generation())});
  table.AddRow({"state", WorkerStateText(w)});
  if (w.pid() != 0) {
    table.AddRow({"pid", absl::StrFormat("%d, started %s ago", w.pid(),
                                         Since(w.started_at()))});
    table.AddRow(
        {"ready", w.ready_since().seconds() != 0
                      ? absl::StrCat("since ", Since(w.ready_since()), " ago")
                      : "not yet"});
  } else {
    table.AddRow({"pid", "- (no process now)"});
  }
  table.AddRow({"command", absl::StrJoin(d.command(), " ")});
  if (!d.exe().empty()) table.AddRow({"binary", d.exe()});
  if (!d.cwd().empty()) table.AddRow({"cwd", d.cwd()});
  table.AddRow({"restarts", absl::StrCat(w.restarts())});
  table.AddRow({"last exit", w.last_exit().empty() ? "-" : w.last_exit()});
  if (w.pid() != 0) {
    table.AddRow({"cpu", absl::StrFormat("%.1f%% now, %.2f s in all",
                                         w.cpu_percent(), w.cpu_seconds())});
    table.AddRow({"memory", FormatBytes(w.rss_bytes())});
    table.AddRow({"open fds",
                  d.open_fds() >= 0 ? absl::StrCat(d.open_fds()) : "unknown"});
  }
  table.AddRow({"status", w.status().empty() ? "-" : w.status()});
  std::string out;
  for (const auto& [name, value] : rows) {
    absl::StrAppend(&out, absl::StrFormat("%-10s %s\n", name, value));
  }
  // Names only: values may be secrets and are never sent.
  absl::StrAppend(&out, "environment (", d.env_names_size(),
                  " names; values are not shown):\n");
  std::string line = " ";
  for (const std::string& name : d.env_names()) {
    if (line.size() + name.size() + 1 > 78) {
      absl::StrAppend(&out, line, "\n");
      line = " ";
    }
    absl::StrAppend(&line, " ", name);
  }
  if (line.size() > 1) absl::StrAppend(&out, line, "\n");
  return out;
}

std::string WorkerStateText(const corral::v1::Worker& w) {
  const std::string name = StateName(w.state());
  return w.not_accepting() ? name + " (not accepting)" : name;
}

std::string WorkerTable(const corral::v1::GetStatusResponse& status) {
  Table table({"ID", "PID", "STATE", "GEN", "RESTARTS", "UPTIME", "CPU", "MEM",
               "STATUS"});
  for (const corral::v1::Worker& w : status.workers()) {
    const std::string note = WorkerNote(status, w);
    table.AddRow({absl::StrCat(w.slot()), w.pid() ? absl::StrCat(w.pid()) : "-",
                  WorkerStateText(w), absl::StrCat(w.generation()),
                  absl::StrCat(w.restarts()),
                  w.pid() ? Since(w.started_at()) : "-",
                  w.pid() ? absl::StrFormat("%.1f%%", w.cpu_percent()) : "-",
                  FormatBytes(w.rss_bytes()), note});
  }
  return table.Render();
}

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace corral::ctl
