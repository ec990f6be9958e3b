#include "ctl/json_out.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>

#include <cctype>
#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/json.h"

namespace corral::ctl {
namespace {

using corral::common::JsonQuote;
using google::protobuf::Descriptor;
using google::protobuf::FieldDescriptor;
using google::protobuf::Struct;
using google::protobuf::Value;

// "WorkerState" -> "WORKER_STATE_".
std::string EnumPrefix(const std::string& type_name) {
  std::string prefix;
  for (size_t i = 0; i < type_name.size(); ++i) {
    const char c = type_name[i];
    if (i > 0 && std::isupper(static_cast<unsigned char>(c))) prefix += '_';
    prefix += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return prefix + "_";
}

// Writes protobuf's JSON tree back out: members in .proto field order,
// 64-bit integers as numbers (protobuf wrote them as strings, exact),
// enums by their short names. Well-known types (Timestamp, Duration,
// Struct) keep protobuf's form.
class Writer {
 public:
  explicit Writer(bool pretty) : pretty_(pretty) {}

  void Message(const Descriptor* d, const Struct& object, int depth) {
    std::vector<std::pair<std::string, std::function<void()>>> members;
    for (int i = 0; i < d->field_count(); ++i) {
      const FieldDescriptor* field = d->field(i);
      auto it = object.fields().find(field->name());
      if (it == object.fields().end()) continue;
      const Value& v = it->second;
      members.emplace_back(field->name(), [this, field, &v, depth] {
        if (field->is_repeated() && !field->is_map() && v.has_list_value()) {
          List(v.list_value().values().size(), depth + 1, [&](int k, int d2) {
            Field(field, v.list_value().values(k), d2);
          });
        } else {
          Field(field, v, depth + 1);
        }
      });
    }
    Object(members, depth);
  }

  std::string out;

 private:
  void Field(const FieldDescriptor* field, const Value& v, int depth) {
    switch (field->cpp_type()) {
      case FieldDescriptor::CPPTYPE_INT64:
      case FieldDescriptor::CPPTYPE_UINT64: {
        int64_t i = 0;
        uint64_t u = 0;
        if (v.has_string_value() && (absl::SimpleAtoi(v.string_value(), &i) ||
                                     absl::SimpleAtoi(v.string_value(), &u))) {
          out += v.string_value();
          return;
        }
        break;
      }
      case FieldDescriptor::CPPTYPE_ENUM:
        if (v.has_string_value()) {
          out += JsonQuote(
              ShortEnumName(field->enum_type()->name(), v.string_value()));
          return;
        }
        break;
      case FieldDescriptor::CPPTYPE_MESSAGE:
        if (!absl::StartsWith(field->message_type()->full_name(),
                              "google.protobuf.") &&
            v.has_struct_value()) {
          Message(field->message_type(), v.struct_value(), depth);
          return;
        }
        break;
      default:
        break;
    }
    Any(v, depth);
  }

  // A value with no descriptor to follow (a Struct's members: sorted).
  void Any(const Value& v, int depth) {
    switch (v.kind_case()) {
      case Value::kNumberValue: {
        const double n = v.number_value();
        if (n == static_cast<double>(static_cast<int64_t>(n)) &&
            std::abs(n) < 1e15) {
          out += std::to_string(static_cast<int64_t>(n));
        } else {
          out += absl::StrCat(n);
        }
        return;
      }
      case Value::kStringValue:
        out += JsonQuote(v.string_value());
        return;
      case Value::kBoolValue:
        out += v.bool_value() ? "true" : "false";
        return;
      case Value::kStructValue: {
        std::map<std::string, const Value*> sorted;
        for (const auto& [k, item] : v.struct_value().fields()) {
          sorted[k] = &item;
        }
        std::vector<std::pair<std::string, std::function<void()>>> members;
        for (const auto& [k, item] : sorted) {
          members.emplace_back(k,
                               [this, item, depth] { Any(*item, depth + 1); });
        }
        Object(members, depth);
        return;
      }
      case Value::kListValue:
        List(v.list_value().values().size(), depth,
             [&](int k, int d2) { Any(v.list_value().values(k), d2); });
        return;
      default:
        out += "null";
    }
  }

  void Object(
      const std::vector<std::pair<std::string, std::function<void()>>>& members,
      int depth) {
    if (members.empty()) {
      out += "{}";
      return;
    }
    out += "{";
    for (size_t i = 0; i < members.size(); ++i) {
      if (i > 0) out += ",";
      Break(depth + 1);
      out += JsonQuote(members[i].first);
      out += pretty_ ? ": " : ":";
      members[i].second();
    }
    Break(depth);
    out += "}";
  }

  void List(int n, int depth, const std::function<void(int, int)>& item) {
    if (n == 0) {
      out += "[]";
      return;
    }
    out += "[";
    for (int k = 0; k < n; ++k) {
      if (k > 0) out += ",";
      Break(depth + 1);
      item(k, depth + 1);
    }
    Break(depth);
    out += "]";
  }

  void Break(int depth) {
    if (!pretty_) return;
    out += "\n";
    out.append(static_cast<size_t>(depth) * 2, ' ');
  }

  bool pretty_;
};

}  // namespace

std::string ShortEnumName(const std::string& enum_type_name,
                          const std::string& value_name) {
  std::string name = value_name;
  const std::string prefix = EnumPrefix(enum_type_name);
  if (absl::StartsWith(name, prefix)) name = name.substr(prefix.size());
  return absl::AsciiStrToLower(name);
}

std::string ToJson(const google::protobuf::Message& message, bool pretty) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string raw;
  (void)google::protobuf::util::MessageToJsonString(message, &raw, options);
  // Back into a generic tree, written out again in the message's field
  // order with readable enums and numbers.
  Struct tree;
  if (!google::protobuf::util::JsonStringToMessage(raw, &tree).ok()) {
    return raw + "\n";  // never expected; protobuf's mapping is valid JSON
  }
  Writer writer(pretty);
  writer.Message(message.GetDescriptor(), tree, 0);
  return writer.out + "\n";
}

}  // namespace corral::ctl
