// The SDK's JSON object helpers now live in common/json.h (the agent reads
// Node IPC lines with them too); this header keeps compiling.
#ifndef CORRAL_WORKER_SDK_JSON_OBJECT_H_
#define CORRAL_WORKER_SDK_JSON_OBJECT_H_

#include "common/json.h"

namespace corral::worker {

using common::FindMember;
using common::IsJsonValue;
using common::JsonMember;
using common::JsonMembers;
using common::JsonNumber;
using common::JsonQuote;
using common::JsonString;
using common::ParseJsonObject;
using common::RemoveMember;
using common::SetMember;
using common::WriteJsonObject;

}  // namespace corral::worker

#endif  // CORRAL_WORKER_SDK_JSON_OBJECT_H_
