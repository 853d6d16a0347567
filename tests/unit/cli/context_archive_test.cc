// Packaging a build context, checked against the readers that will consume it: GNU tar, gzip,
// sha256sum, and Go's archive/tar + compress/gzip (what dockerd uses) when Go is installed.
#include "cli/context_archive.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "support/test_support.h"

namespace slipway::cli {
namespace {

namespace fs = std::filesystem;
using testing::FileSha256;
using testing::RunCommand;
using testing::TempDir;
using testing::WriteRandomFile;

void WriteText(const fs::path& path, std::string_view text, fs::perms perms = fs::perms(0644)) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
  fs::permissions(path, perms);
}

// A small app: source, an executable script, a symlink, an empty directory, a nested tree,
// a multi-block compressible file and a multi-block random file.
void MakeApp(const fs::path& root) {
  WriteText(root / "Dockerfile", "FROM scratch\nCOPY . /app\n");
  WriteText(root / "src/main.go", "package main\n\nfunc main() {}\n");
  WriteText(root / "src/util/strings.go", "package util\n");
  WriteText(root / "bin/run.sh", "#!/bin/sh\nexec /app/server\n", fs::perms(0755));
  WriteText(root / "private/key.pem", "-----BEGIN KEY-----\n", fs::perms(0600));
  fs::create_directories(root / "empty");
  fs::create_symlink("src/main.go", root / "main-link.go");
  fs::create_symlink("/etc/passwd", root / "outside-link");  // stored as a link, never followed
  std::string text;
  for (int i = 0; text.size() < 700 * 1024; ++i) text += "line " + std::to_string(i) + " of a generated log\n";
  WriteText(root / "data/log.txt", text);
  WriteRandomFile(root / "data/blob.bin", 300 * 1024, 7);
}

struct EntryInfo {
  char type;  // f, d, l
  unsigned perms;
  std::string content;  // sha256 for files, target for links
  bool operator==(const EntryInfo&) const = default;
};

std::map<std::string, EntryInfo> ReadTree(const fs::path& root) {
  std::map<std::string, EntryInfo> out;
  for (auto it = fs::recursive_directory_iterator(root); it != fs::recursive_directory_iterator(); ++it) {
    const fs::path& p = it->path();
    std::string rel = p.lexically_relative(root).generic_string();
    struct stat st;
    lstat(p.c_str(), &st);
    if (S_ISLNK(st.st_mode)) {
      out[rel] = {'l', 0, fs::read_symlink(p).string()};
    } else if (S_ISDIR(st.st_mode)) {
      out[rel] = {'d', static_cast<unsigned>(st.st_mode & 07777), ""};
    } else {
      out[rel] = {'f', static_cast<unsigned>(st.st_mode & 07777), FileSha256(p)};
    }
  }
  return out;
}

std::set<std::string> TarNames(const fs::path& archive) {
  auto listed = RunCommand("tar -tzf '" + archive.string() + "'");
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  std::set<std::string> names;
  std::istringstream lines(listed.output);
  for (std::string line; std::getline(lines, line);) names.insert(line);
  return names;
}

Result<ContextArchive> PackageTo(const fs::path& dir, const fs::path& out, PackageOptions options = {}) {
  options.output_path = out;
  return PackageContext(dir, options);
}

TEST(ContextArchiveTest, RoundTripThroughGnuTarKeepsContentModesAndSymlinks) {
  TempDir tmp;
  fs::path app = tmp.path() / "app";
  MakeApp(app);
  PackageOptions options;
  options.block_size = 64 * 1024;  // many gzip members, so multistream reading is exercised
  auto archive = PackageTo(app, tmp.path() / "ctx.tar.gz", options);
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  EXPECT_GT(archive->size, 0u);
  EXPECT_EQ(archive->entries, ReadTree(app).size());

  auto gzip = RunCommand("gzip -t '" + (tmp.path() / "ctx.tar.gz").string() + "'");
  EXPECT_EQ(gzip.exit_code, 0) << gzip.output;

  fs::create_directories(tmp.path() / "out");
  auto extract = RunCommand("tar -xzpf '" + (tmp.path() / "ctx.tar.gz").string() + "' -C '" +
                            (tmp.path() / "out").string() + "'");
  ASSERT_EQ(extract.exit_code, 0) << extract.output;
  auto want = ReadTree(app);
  auto got = ReadTree(tmp.path() / "out");
  EXPECT_EQ(got.size(), want.size());
  for (const auto& [path, info] : want) {
    auto it = got.find(path);
    ASSERT_NE(it, got.end()) << path << " is missing from the extracted archive";
    EXPECT_EQ(it->second.type, info.type) << path;
    EXPECT_EQ(it->second.content, info.content) << path;
    if (info.type != 'l') {
      EXPECT_EQ(it->second.perms, info.perms) << path;
    }
  }
  EXPECT_EQ(got["bin/run.sh"].perms, 0755u);
  EXPECT_EQ(got["outside-link"].content, "/etc/passwd");

  // Normalised metadata: owner 0/0 and the fixed modification time on every entry.
  auto verbose = RunCommand("tar -tzvf '" + (tmp.path() / "ctx.tar.gz").string() + "' --numeric-owner");
  ASSERT_EQ(verbose.exit_code, 0) << verbose.output;
  std::istringstream lines(verbose.output);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) {
    EXPECT_NE(line.find(" 0/0 "), std::string::npos) << line;
    EXPECT_NE(line.find("2000-01-01"), std::string::npos) << line;
  }
  EXPECT_EQ(count, static_cast<int>(want.size()));
}

TEST(ContextArchiveTest, EntriesAreSortedWithEachDirectoryBeforeItsContents) {
  TempDir tmp;
  MakeApp(tmp.path() / "app");
  ASSERT_TRUE(PackageTo(tmp.path() / "app", tmp.path() / "ctx.tar.gz").ok());
  auto listed = RunCommand("tar -tzf '" + (tmp.path() / "ctx.tar.gz").string() + "'");
  EXPECT_EQ(listed.output,
            "Dockerfile\nbin/\nbin/run.sh\ndata/\ndata/blob.bin\ndata/log.txt\nempty/\nmain-link.go\n"
            "outside-link\nprivate/\nprivate/key.pem\nsrc/\nsrc/main.go\nsrc/util/\nsrc/util/strings.go\n");
}

TEST(ContextArchiveTest, DockerIgnoreKeepsALargeFileAndASecretOut) {
  TempDir tmp;
  fs::path app = tmp.path() / "app";
  MakeApp(app);
  WriteRandomFile(app / "big.bin", 4 << 20);
  WriteText(app / "secret.env", "API_KEY=hunter2\n");
  WriteText(app / ".dockerignore", "# keep these off the builder\nbig.bin\nsecret.env\nprivate\n**/*.txt\n");
  auto archive = PackageTo(app, tmp.path() / "ctx.tar.gz");
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  auto names = TarNames(tmp.path() / "ctx.tar.gz");
  EXPECT_FALSE(names.count("big.bin"));
  EXPECT_FALSE(names.count("secret.env"));
  EXPECT_FALSE(names.count("private/"));
  EXPECT_FALSE(names.count("private/key.pem"));
  EXPECT_FALSE(names.count("data/log.txt"));
  EXPECT_TRUE(names.count("data/blob.bin"));
  EXPECT_TRUE(names.count("src/main.go"));
  EXPECT_TRUE(names.count(".dockerignore"));
  EXPECT_TRUE(names.count("Dockerfile"));
  // The 4 MiB of random data is not hiding in the archive under another name.
  EXPECT_LT(archive->size, 1u << 20);
}

TEST(ContextArchiveTest, DockerfileAndDockerIgnoreAreAlwaysSent) {
  TempDir tmp;
  fs::path app = tmp.path() / "app";
  MakeApp(app);
  WriteText(app / "api/Dockerfile", "FROM scratch\n");
  WriteText(app / "api/main.go", "package main\n");
  WriteText(app / ".dockerignore", "*\n!src\n.dockerignore\napi\n");
  PackageOptions options;
  options.dockerfile = "api/Dockerfile";
  ASSERT_TRUE(PackageTo(app, tmp.path() / "ctx.tar.gz", options).ok());
  auto names = TarNames(tmp.path() / "ctx.tar.gz");
  EXPECT_EQ(names, (std::set<std::string>{".dockerignore", "api/", "api/Dockerfile", "src/", "src/main.go",
                                          "src/util/", "src/util/strings.go"}));
}

TEST(ContextArchiveTest, ExcludedDirectoryIsEnteredOnlyForItsExceptions) {
  TempDir tmp;
  fs::path app = tmp.path() / "app";
  MakeApp(app);
  WriteText(app / "vendor/keep/LICENSE", "MIT\n");
  WriteText(app / "vendor/drop/lib.c", "int x;\n");
  WriteText(app / ".dockerignore", "vendor\n!vendor/keep\n");
  fs::permissions(app / "vendor", fs::perms(0750));
  ASSERT_TRUE(PackageTo(app, tmp.path() / "ctx.tar.gz").ok());
  auto names = TarNames(tmp.path() / "ctx.tar.gz");
  EXPECT_TRUE(names.count("vendor/"));  // written for its re-included child, with its own mode
  EXPECT_TRUE(names.count("vendor/keep/LICENSE"));
  EXPECT_FALSE(names.count("vendor/drop/"));
  EXPECT_FALSE(names.count("vendor/drop/lib.c"));
  auto verbose = RunCommand("tar -tzvf '" + (tmp.path() / "ctx.tar.gz").string() + "' vendor/");
  EXPECT_NE(verbose.output.find("drwxr-x---"), std::string::npos) << verbose.output;
}

TEST(ContextArchiveTest, DockerfileSpecificIgnoreFileWinsOverTheRootOne) {
  TempDir tmp;
  fs::path app = tmp.path() / "app";
  MakeApp(app);
  WriteText(app / ".dockerignore", "src\n");
  WriteText(app / "Dockerfile.dockerignore", "data\n");
  ASSERT_TRUE(PackageTo(app, tmp.path() / "ctx.tar.gz").ok());
  auto names = TarNames(tmp.path() / "ctx.tar.gz");
  EXPECT_TRUE(names.count("src/main.go"));
  EXPECT_FALSE(names.count("data/log.txt"));
}

TEST(ContextArchiveTest, MissingDockerfileIsRefusedBeforeAnyOutput) {
  TempDir tmp;
  fs::path app = tmp.path() / "app";
  MakeApp(app);
  PackageOptions options;
  options.dockerfile = "api/Dockerfile";
  auto archive = PackageTo(app, tmp.path() / "ctx.tar.gz", options);
  ASSERT_FALSE(archive.ok());
  EXPECT_EQ(archive.status().code(), Code::kNotFound);
  EXPECT_EQ(archive.status().message(), "no Dockerfile at \"api/Dockerfile\" in " + app.string() + " (use --dockerfile)");
  EXPECT_FALSE(fs::exists(tmp.path() / "ctx.tar.gz"));

  fs::remove(app / "Dockerfile");
  bool called = false;
  PackageOptions to_sink;
  to_sink.sink = [&](std::string_view) {
    called = true;
    return Status::Ok();
  };
  auto refused = PackageContext(app, to_sink);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "no Dockerfile at \"Dockerfile\" in " + app.string() + " (use --dockerfile)");
  EXPECT_FALSE(called);
}

TEST(ContextArchiveTest, DockerfileOutsideTheContextIsRefused) {
  TempDir tmp;
  fs::path app = tmp.path() / "app";
  MakeApp(app);
  WriteText(tmp.path() / "Dockerfile", "FROM scratch\n");
  for (const std::string& dockerfile :
       std::vector<std::string>{"../Dockerfile", "src/../../Dockerfile", (tmp.path() / "Dockerfile").string()}) {
    PackageOptions options;
    options.dockerfile = dockerfile;
    auto archive = PackageTo(app, tmp.path() / "ctx.tar.gz", options);
    ASSERT_FALSE(archive.ok()) << dockerfile;
    EXPECT_EQ(archive.status().code(), Code::kInvalidArgument) << dockerfile;
    EXPECT_NE(archive.status().message().find("outside the context"), std::string::npos);
    EXPECT_FALSE(fs::exists(tmp.path() / "ctx.tar.gz"));
  }
  // An absolute path inside the context is fine.
  PackageOptions inside;
  inside.dockerfile = (app / "Dockerfile").string();
  auto archive = PackageTo(app, tmp.path() / "ctx.tar.gz", inside);
  ASSERT_TRUE(archive.ok()) << archive.status().ToString();
  EXPECT_EQ(archive->dockerfile, "Dockerfile");
}

TEST(ContextArchiveTest, SameSourceGivesTheSameSha256AndAChangedByteDoesNot) {
  TempDir tmp;
  MakeApp(tmp.path() / "a");
  auto first = PackageTo(tmp.path() / "a", tmp.path() / "1.tar.gz");
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  // A copy made later, with other timestamps and directory order, is the same source.
  ASSERT_EQ(RunCommand("cp -a '" + (tmp.path() / "a").string() + "' '" + (tmp.path() / "b").string() +
                       "' && touch -d 2021-05-05 '" + (tmp.path() / "b/src/main.go").string() + "'")
                .exit_code,
            0);
  auto copy = PackageTo(tmp.path() / "b", tmp.path() / "2.tar.gz");
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->sha256, first->sha256);
  EXPECT_EQ(copy->size, first->size);
  EXPECT_EQ(FileSha256(tmp.path() / "2.tar.gz"), FileSha256(tmp.path() / "1.tar.gz"));

  WriteText(tmp.path() / "b/src/main.go", "package main\n\nfunc main() {}\n\n");
  auto changed = PackageTo(tmp.path() / "b", tmp.path() / "3.tar.gz");
  ASSERT_TRUE(changed.ok());
  EXPECT_NE(changed->sha256, first->sha256);

  fs::permissions(tmp.path() / "a/src/main.go", fs::perms(0755));
  auto chmodded = PackageTo(tmp.path() / "a", tmp.path() / "4.tar.gz");
  ASSERT_TRUE(chmodded.ok());
  EXPECT_NE(chmodded->sha256, first->sha256);
}

TEST(ContextArchiveTest, ReportedSha256AndSizeAreThoseOfTheBytesWritten) {
  TempDir tmp;
  MakeApp(tmp.path() / "app");
  fs::path out = tmp.path() / "ctx.tar.gz";
  auto archive = PackageTo(tmp.path() / "app", out);
  ASSERT_TRUE(archive.ok());
  auto sum = RunCommand("sha256sum '" + out.string() + "'");
  ASSERT_EQ(sum.exit_code, 0);
  EXPECT_EQ(sum.output.substr(0, 64), archive->sha256);
  EXPECT_EQ(archive->size, fs::file_size(out));
  auto tar_size = RunCommand("gzip -dc '" + out.string() + "' | wc -c");
  EXPECT_EQ(std::stoull(tar_size.output), archive->tar_size);

  // The sink receives exactly the bytes the file gets.
  std::string streamed;
  PackageOptions options;
  options.sink = [&](std::string_view piece) {
    streamed.append(piece);
    return Status::Ok();
  };
  auto to_sink = PackageContext(tmp.path() / "app", options);
  ASSERT_TRUE(to_sink.ok());
  EXPECT_EQ(streamed, testing::ReadFile(out));
  EXPECT_EQ(to_sink->sha256, archive->sha256);
}

TEST(ContextArchiveTest, SinkErrorStopsPackagingAndIsReturned) {
  TempDir tmp;
  MakeApp(tmp.path() / "app");
  int calls = 0;
  PackageOptions options;
  options.block_size = 16 * 1024;
  options.sink = [&](std::string_view) {
    return ++calls == 2 ? Status::Unavailable("upload connection reset; run the command again") : Status::Ok();
  };
  auto archive = PackageContext(tmp.path() / "app", options);
  ASSERT_FALSE(archive.ok());
  EXPECT_EQ(archive.status().code(), Code::kUnavailable);
  EXPECT_EQ(calls, 2);
}

// dockerd reads contexts with Go's compress/gzip (multistream by default) and archive/tar.
TEST(ContextArchiveTest, GoReadsTheArchiveLikeDockerd) {
  if (RunCommand("command -v go").exit_code != 0) GTEST_SKIP() << "Go is not installed";
  TempDir tmp;
  MakeApp(tmp.path() / "app");
  PackageOptions options;
  options.block_size = 64 * 1024;
  ASSERT_TRUE(PackageTo(tmp.path() / "app", tmp.path() / "ctx.tar.gz", options).ok());
  WriteText(tmp.path() / "read.go", R"(package main

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"fmt"
	"io"
	"os"
)

func main() {
	f, err := os.Open(os.Args[1])
	if err != nil {
		panic(err)
	}
	gz, err := gzip.NewReader(f)
	if err != nil {
		panic(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
		sum := sha256.New()
		if _, err := io.Copy(sum, tr); err != nil {
			panic(err)
		}
		fmt.Printf("%s %o %s %x\n", h.Name, h.Mode&0o7777, h.Linkname, sum.Sum(nil))
	}
}
)");
  auto read = RunCommand("cd '" + tmp.str() + "' && go run read.go ctx.tar.gz");
  ASSERT_EQ(read.exit_code, 0) << read.output;
  const std::string empty_sha = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
  EXPECT_NE(read.output.find("bin/run.sh 755  " + FileSha256(tmp.path() / "app/bin/run.sh")), std::string::npos)
      << read.output;
  EXPECT_NE(read.output.find("data/blob.bin 644  " + FileSha256(tmp.path() / "app/data/blob.bin")),
            std::string::npos);
  EXPECT_NE(read.output.find("main-link.go 777 src/main.go " + empty_sha), std::string::npos);
  EXPECT_NE(read.output.find("private/key.pem 600  "), std::string::npos);
}

}  // namespace
}  // namespace slipway::cli
