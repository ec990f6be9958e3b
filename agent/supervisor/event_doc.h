// The event table of docs/agent-contract.md, rendered from the event
// registry. The doc holds it between two marker lines; tools/event_doc
// rewrites that section and a unit test fails when it differs from
// EventTableMarkdown(). Pure string work.
#ifndef CORRAL_AGENT_SUPERVISOR_EVENT_DOC_H_
#define CORRAL_AGENT_SUPERVISOR_EVENT_DOC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace corral::agent {

inline constexpr std::string_view kEventTableBegin =
    "<!-- BEGIN event table: generated from agent/supervisor/"
    "event_registry.cc by corral-event-doc; do not edit by hand -->";
inline constexpr std::string_view kEventTableEnd = "<!-- END event table -->";

// The markdown table (header and one row per registry entry), each line
// ending in '\n'.
std::string EventTableMarkdown();

// The text between the marker lines of `doc` (without the markers), or
// NotFound / InvalidArgument when the markers are missing or out of order.
absl::StatusOr<std::string> ExtractEventTable(std::string_view doc);

// `doc` with the text between the markers replaced by `table`.
absl::StatusOr<std::string> ReplaceEventTable(std::string_view doc,
                                              std::string_view table);

}  // namespace corral::agent

#endif  // CORRAL_AGENT_SUPERVISOR_EVENT_DOC_H_
