// The errors a person sees when the control plane cannot be used, and which ones a poll rides out.
#include "cli/ctrl_api.h"

#include <gtest/gtest.h>

#include "slipway/ctrl/v1/deployment.pb.h"
#include "support/test_support.h"

namespace slipway::cli {
namespace {

Connection Conn() {
  Connection c;
  c.control_plane = "http://127.0.0.1:7000";
  c.token = "t";
  c.control_plane_source = "--control-plane";
  c.token_source = "SLIPWAY_TOKEN";
  return c;
}

TEST(CtrlApiTest, ExplainsWhatToDo) {
  Status down = ExplainCtrlError(Status::Unavailable("connection refused"), Conn());
  EXPECT_EQ(down.code(), Code::kUnavailable);
  EXPECT_NE(down.message().find("cannot reach the control plane at http://127.0.0.1:7000"),
            std::string::npos);
  EXPECT_NE(down.message().find("slipway dev"), std::string::npos);

  Status refused = ExplainCtrlError(Status::Unauthenticated("the API token is not valid"), Conn());
  EXPECT_EQ(refused.code(), Code::kUnauthenticated);
  EXPECT_NE(refused.message().find("refused the API token from SLIPWAY_TOKEN"), std::string::npos);

  // The server's own words pass through untouched.
  Status invalid = Status::InvalidArgument("project name \"X\" must be ...");
  EXPECT_EQ(ExplainCtrlError(invalid, Conn()), invalid);

  EXPECT_TRUE(IsTransientCtrlError(Status::Unavailable("x")));
  EXPECT_TRUE(IsTransientCtrlError(Status::DeadlineExceeded("x")));
  EXPECT_FALSE(IsTransientCtrlError(Status::Unauthenticated("x")));
  EXPECT_FALSE(IsTransientCtrlError(Status::NotFound("x")));
}

TEST(CtrlApiTest, NothingListeningIsUnavailableNamingTheAddress) {
  Connection c = Conn();
  c.control_plane = "http://127.0.0.1:" + std::to_string(testing::FreePort());
  CtrlApi api(c);
  ctrl::v1::ListDeploymentsRequest req;
  ctrl::v1::ListDeploymentsResponse resp;
  Status st = api.CallPatiently("DeploymentService", "ListDeployments", req, &resp,
                                std::chrono::milliseconds(0), nullptr);
  EXPECT_EQ(st.code(), Code::kUnavailable) << st.message();
  EXPECT_NE(st.message().find(c.control_plane), std::string::npos) << st.message();
}

}  // namespace
}  // namespace slipway::cli
