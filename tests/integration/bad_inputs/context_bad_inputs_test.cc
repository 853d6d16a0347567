// Bad input in a build context, packaged the way `slipway build` and `slipway deploy` package it
// before anything is uploaded: symlink loops and symlinks out of the context, sockets, FIFOs and
// devices in the tree, unreadable files and directories, names with newlines or bytes that are
// not UTF-8, a broken .dockerignore, and a context of 100,000 files. Each case asserts what
// docs/bad-inputs.md promises: what cannot be sent is a clear error naming the path, and then
// nothing was written (so nothing can be uploaded); what Docker would send is sent exactly, and
// nothing outside the context ever is; packaging never hangs or crashes.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>

#include "cli/context_archive.h"
#include "support/test_support.h"

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;
using slipway::testing::TempDir;

void Write(const fs::path& path, std::string_view text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

struct Entry {
  char type = '?';     // 'f' file, 'd' directory, 'l' symlink
  std::string data;    // a file's contents, a link's target
};

// Every entry of a packaged context, by its exact name (bytes as stored).
std::map<std::string, Entry> Entries(const fs::path& archive_path) {
  std::map<std::string, Entry> out;
  struct archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  EXPECT_EQ(archive_read_open_filename(a, archive_path.c_str(), 1 << 16), ARCHIVE_OK)
      << archive_error_string(a);
  struct archive_entry* e;
  while (archive_read_next_header(a, &e) == ARCHIVE_OK) {
    Entry entry;
    std::string name = archive_entry_pathname(e);
    if (!name.empty() && name.back() == '/') name.pop_back();
    switch (archive_entry_filetype(e)) {
      case AE_IFREG: {
        entry.type = 'f';
        char buf[8192];
        la_ssize_t n;
        while ((n = archive_read_data(a, buf, sizeof buf)) > 0) entry.data.append(buf, n);
        break;
      }
      case AE_IFDIR: entry.type = 'd'; break;
      case AE_IFLNK: entry.type = 'l'; entry.data = archive_entry_symlink(e); break;
      default: break;
    }
    out[name] = entry;
  }
  archive_read_free(a);
  return out;
}

class ContextBadInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    context_ = dir_.path() / "ctx";
    Write(context_ / "Dockerfile", "FROM scratch\nCOPY . /\n");
    out_ = dir_.path() / "context.tar.gz";
  }
  Result<ContextArchive> Package() {
    PackageOptions options;
    options.output_path = out_;
    options.threads = 2;
    return PackageContext(context_, options);
  }
  // A refusal: the code, a message naming `path`, and no archive left to upload.
  void ExpectRefused(const Result<ContextArchive>& got, std::string_view path) {
    ASSERT_FALSE(got.ok());
    EXPECT_NE(got.status().message().find(path), std::string::npos) << got.status().ToString();
    EXPECT_FALSE(fs::exists(out_)) << "a failed packaging left an archive behind";
  }

  TempDir dir_;
  fs::path context_;
  fs::path out_;
};

TEST_F(ContextBadInputTest, SymlinkLoopIsSentAsTwoLinksAndNeverFollowed) {
  fs::create_symlink("b", context_ / "a");
  fs::create_symlink("a", context_ / "b");
  fs::create_directories(context_ / "d");
  fs::create_symlink("..", context_ / "d" / "up");  // a directory loop
  auto got = Package();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto entries = Entries(out_);
  EXPECT_EQ(entries["a"].type, 'l');
  EXPECT_EQ(entries["a"].data, "b");
  EXPECT_EQ(entries["b"].data, "a");
  EXPECT_EQ(entries["d/up"].type, 'l');
  EXPECT_EQ(entries.size(), 5u);  // Dockerfile, a, b, d, d/up: nothing reached through a link
}

TEST_F(ContextBadInputTest, SymlinksOutOfTheContextSendTheLinkNeverWhatItPointsAt) {
  Write(dir_.path() / "secret.txt", "outside-secret");
  fs::create_symlink(dir_.path() / "secret.txt", context_ / "abs");
  fs::create_symlink("../secret.txt", context_ / "rel");
  fs::create_directory_symlink(dir_.path(), context_ / "parent");
  auto got = Package();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto entries = Entries(out_);
  EXPECT_EQ(entries["abs"].type, 'l');
  EXPECT_EQ(entries["rel"].data, "../secret.txt");
  EXPECT_EQ(entries["parent"].type, 'l');
  for (const auto& [name, entry] : entries) {
    EXPECT_EQ(entry.data.find("outside-secret"), std::string::npos) << name;
  }
}

TEST_F(ContextBadInputTest, DockerfileThatIsASymlinkOutOfTheContextIsRefused) {
  Write(dir_.path() / "elsewhere", "FROM scratch\n");
  fs::remove(context_ / "Dockerfile");
  fs::create_symlink(dir_.path() / "elsewhere", context_ / "Dockerfile");
  ExpectRefused(Package(), "Dockerfile");
}

TEST_F(ContextBadInputTest, SocketsFifosAndDevicesAreLeftOutAndNeverOpened) {
  int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string sock = (context_ / "app.sock").string();
  ASSERT_LT(sock.size(), sizeof addr.sun_path);
  std::strcpy(addr.sun_path, sock.c_str());
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  // A FIFO nobody writes to: opening it to read would block packaging forever.
  ASSERT_EQ(::mkfifo((context_ / "pipe").c_str(), 0644), 0);
  ASSERT_EQ(::mknod((context_ / "null").c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);
  ASSERT_EQ(::mknod((context_ / "disk").c_str(), S_IFBLK | 0600, makedev(7, 0)), 0);
  Write(context_ / "kept.txt", "kept");
  auto got = Package();
  ::close(fd);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto entries = Entries(out_);
  EXPECT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries["kept.txt"].data, "kept");
  EXPECT_TRUE(entries.count("Dockerfile"));
}

// Root reads every file whatever its mode, so the unreadable cases run in a child process that
// has given up root (uid/gid 65534), as a user's `slipway deploy` runs.
int PackageAsNobody(const fs::path& context, const fs::path& out, std::string* message) {
  int pipe_fds[2];
  if (::pipe(pipe_fds) != 0) return -1;
  pid_t pid = ::fork();
  if (pid == 0) {
    ::close(pipe_fds[0]);
    if (::setgid(65534) != 0 || ::setuid(65534) != 0) _exit(3);
    PackageOptions options;
    options.output_path = out;
    options.threads = 1;
    auto got = PackageContext(context, options);
    std::string text = got.ok() ? "ok" : got.status().ToString();
    (void)::write(pipe_fds[1], text.data(), text.size());
    _exit(got.ok() ? 0 : 1);
  }
  ::close(pipe_fds[1]);
  char buf[4096];
  ssize_t n;
  while ((n = ::read(pipe_fds[0], buf, sizeof buf)) > 0) message->append(buf, n);
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST_F(ContextBadInputTest, UnreadableFileIsAnErrorNamingItAndNoArchive) {
  Write(context_ / "private" / "key.pem", "secret");
  fs::permissions(context_ / "private" / "key.pem", fs::perms::none);
  // The child must be able to reach the context and write the archive.
  fs::permissions(dir_.path(), fs::perms(0777));
  for (auto& p : fs::recursive_directory_iterator(dir_.path())) {
    if (p.is_directory()) fs::permissions(p.path(), fs::perms(0777));
  }
  std::string message;
  EXPECT_EQ(PackageAsNobody(context_, out_, &message), 1) << message;
  EXPECT_NE(message.find("private/key.pem"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out_)) << message;
}

TEST_F(ContextBadInputTest, UnreadableDirectoryIsAnErrorNamingItAndNoArchive) {
  Write(context_ / "locked" / "a.txt", "a");
  fs::permissions(dir_.path(), fs::perms(0777));
  fs::permissions(context_, fs::perms(0777));
  fs::permissions(context_ / "locked", fs::perms::none);
  std::string message;
  EXPECT_EQ(PackageAsNobody(context_, out_, &message), 1) << message;
  EXPECT_NE(message.find("locked"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out_)) << message;
}

TEST_F(ContextBadInputTest, NamesWithNewlinesAndBytesThatAreNotUtf8AreSentByteForByte) {
  const std::string newline = "two\nlines.txt";
  const std::string latin1 = "caf\xe9.txt";          // ISO-8859-1, not UTF-8
  const std::string broken = "bad\xff\xfe-bytes.txt";  // no encoding at all
  Write(context_ / newline, "n");
  Write(context_ / latin1, "l");
  Write(context_ / broken, "b");
  Write(context_ / "dir\nwith\nnewlines" / "inside.txt", "i");
  auto got = Package();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  auto entries = Entries(out_);
  EXPECT_EQ(entries[newline].data, "n");
  EXPECT_EQ(entries[latin1].data, "l");
  EXPECT_EQ(entries[broken].data, "b");
  EXPECT_EQ(entries["dir\nwith\nnewlines/inside.txt"].data, "i");
}

TEST_F(ContextBadInputTest, MalformedDockerignoreIsRefusedNamingTheLineAndNoArchive) {
  Write(context_ / ".dockerignore", "node_modules\n[unclosed\n");
  auto got = Package();
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), Code::kInvalidArgument);
  EXPECT_NE(got.status().message().find("2"), std::string::npos) << got.status().ToString();
  EXPECT_FALSE(fs::exists(out_));
}

TEST_F(ContextBadInputTest, AHundredThousandFilesArePackagedCompletely) {
  constexpr int kDirs = 100, kFilesPerDir = 1000;
  for (int d = 0; d < kDirs; ++d) {
    fs::path sub = context_ / ("d" + std::to_string(d));
    fs::create_directories(sub);
    for (int f = 0; f < kFilesPerDir; ++f) {
      int fd = ::open((sub / ("f" + std::to_string(f))).c_str(), O_CREAT | O_WRONLY, 0644);
      ASSERT_GE(fd, 0);
      std::string body = std::to_string(d * kFilesPerDir + f);
      ASSERT_EQ(::write(fd, body.data(), body.size()), static_cast<ssize_t>(body.size()));
      ::close(fd);
    }
  }
  auto got = Package();
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  // Every file, every directory and the Dockerfile.
  EXPECT_EQ(got->entries, static_cast<uint64_t>(kDirs * kFilesPerDir + kDirs + 1));
  auto entries = Entries(out_);
  EXPECT_EQ(entries.size(), static_cast<size_t>(kDirs * kFilesPerDir + kDirs + 1));
  EXPECT_EQ(entries["d99/f999"].data, "99999");
  EXPECT_EQ(entries["d0/f0"].data, "0");
}

}  // namespace
}  // namespace slipway::cli
