// krane's instances as ctrl records them (the partition database's rows), for the wait step
// and the instance monitor alike.
#pragma once

#include <vector>

#include "ctrl/partition_store.h"

namespace google::protobuf {
template <typename Element>
class RepeatedPtrField;
}  // namespace google::protobuf

namespace slipway::krane::v1 {
class Instance;
}  // namespace slipway::krane::v1

namespace slipway::ctrl {

// Each instance with krane's status name (PENDING, RUNNING, TERMINATING, FAILED; an unknown
// status reads as PENDING: never routed to).
std::vector<InstanceRow> InstanceRowsFromKrane(
    const google::protobuf::RepeatedPtrField<krane::v1::Instance>& instances);

}  // namespace slipway::ctrl
