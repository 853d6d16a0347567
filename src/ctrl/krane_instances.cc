#include "ctrl/krane_instances.h"

#include "slipway/krane/v1/deployment.pb.h"

namespace slipway::ctrl {
namespace {

namespace kv1 = slipway::krane::v1;

std::string InstanceStatusName(kv1::InstanceStatus status) {
  switch (status) {
    case kv1::INSTANCE_STATUS_RUNNING:
      return "RUNNING";
    case kv1::INSTANCE_STATUS_TERMINATING:
      return "TERMINATING";
    case kv1::INSTANCE_STATUS_FAILED:
      return "FAILED";
    default:
      return "PENDING";
  }
}

}  // namespace

std::vector<InstanceRow> InstanceRowsFromKrane(
    const google::protobuf::RepeatedPtrField<kv1::Instance>& instances) {
  std::vector<InstanceRow> rows;
  for (const auto& in : instances) {
    rows.push_back({in.id(), in.address(), InstanceStatusName(in.status()), in.reason()});
  }
  return rows;
}

}  // namespace slipway::ctrl
