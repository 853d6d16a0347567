// main() of the test executables: GoogleTest's, except that a test that did not run fails.
//
// GoogleTest marks the tests of a suite whose SetUpTestSuite failed as skipped and prints them
// as "[  SKIPPED ]"; ctest (gtest_discover_tests gives every test that skip pattern) would then
// count them as skipped, and a run with a broken suite would pass. Here such tests are printed
// as "[ NOT RUN  ]" and the run exits 1, so ctest reports them as failed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

namespace {

// GoogleTest's own printer, but for the lines that would say a test was skipped.
class NoSkipsPrinter : public ::testing::TestEventListener {
 public:
  explicit NoSkipsPrinter(::testing::TestEventListener* inner) : inner_(inner) {}

  void OnTestProgramStart(const ::testing::UnitTest& u) override { inner_->OnTestProgramStart(u); }
  void OnTestIterationStart(const ::testing::UnitTest& u, int i) override {
    inner_->OnTestIterationStart(u, i);
  }
  void OnEnvironmentsSetUpStart(const ::testing::UnitTest& u) override {
    inner_->OnEnvironmentsSetUpStart(u);
  }
  void OnEnvironmentsSetUpEnd(const ::testing::UnitTest& u) override {
    inner_->OnEnvironmentsSetUpEnd(u);
  }
  void OnTestSuiteStart(const ::testing::TestSuite& s) override { inner_->OnTestSuiteStart(s); }
  void OnTestStart(const ::testing::TestInfo& t) override { inner_->OnTestStart(t); }
  void OnTestPartResult(const ::testing::TestPartResult& r) override { inner_->OnTestPartResult(r); }
  void OnTestEnd(const ::testing::TestInfo& t) override {
    if (t.result() != nullptr && t.result()->Skipped()) {
      std::printf("[ NOT RUN  ] %s.%s: it did not run (skipped, or its suite's set-up failed)\n",
                  t.test_suite_name(), t.name());
      std::fflush(stdout);
      return;
    }
    inner_->OnTestEnd(t);
  }
  void OnTestSuiteEnd(const ::testing::TestSuite& s) override { inner_->OnTestSuiteEnd(s); }
  void OnEnvironmentsTearDownStart(const ::testing::UnitTest& u) override {
    inner_->OnEnvironmentsTearDownStart(u);
  }
  void OnEnvironmentsTearDownEnd(const ::testing::UnitTest& u) override {
    inner_->OnEnvironmentsTearDownEnd(u);
  }
  void OnTestIterationEnd(const ::testing::UnitTest& u, int i) override {
    if (u.skipped_test_count() == 0) {
      inner_->OnTestIterationEnd(u, i);
      return;
    }
    std::printf("[==========] %d tests ran; %d passed, %d failed, %d did not run: FAILED\n",
                u.test_to_run_count(), u.successful_test_count(), u.failed_test_count(),
                u.skipped_test_count());
    std::fflush(stdout);
  }
  void OnTestProgramEnd(const ::testing::UnitTest& u) override { inner_->OnTestProgramEnd(u); }

 private:
  std::unique_ptr<::testing::TestEventListener> inner_;
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleMock(&argc, argv);
  ::testing::TestEventListeners& listeners = ::testing::UnitTest::GetInstance()->listeners();
  listeners.Append(new NoSkipsPrinter(listeners.Release(listeners.default_result_printer())));
  const int result = RUN_ALL_TESTS();
  if (result == 0 && ::testing::UnitTest::GetInstance()->skipped_test_count() > 0) return 1;
  return result;
}
