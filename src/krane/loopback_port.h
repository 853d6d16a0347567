// Picking a TCP port on 127.0.0.1 for a new instance (host networking: every instance binds
// its own loopback port). Shared by the docker and kubernetes backends.
#pragma once

#include <set>

#include "base/status.h"

namespace slipway::krane {

// A port that nothing listens on right now and that is not in taken; ResourceExhausted when
// 64 tries find none.
Result<int> PickFreeLoopbackPort(const std::set<int>& taken);

}  // namespace slipway::krane
