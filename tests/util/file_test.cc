#include "util/file.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "util/checksum.h"
#include "util/fault_injection.h"

namespace fern {
namespace {

bool Contains(const Status& s, std::string_view text) {
  return s.ToString().find(text) != std::string::npos;
}

class FileTest : public testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = testing::TempDir() + "fern_file_test_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    SetFaultInjector(nullptr);
    std::filesystem::remove_all(dir_);
  }

  std::string Path(std::string_view name) const { return dir_ + "/" + std::string(name); }

  std::unique_ptr<File> OpenOrDie(const std::string& path, File::Mode mode = File::Mode::kCreate) {
    std::unique_ptr<File> file;
    Status s = File::Open(path, mode, &file);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return file;
  }

  std::string Contents(const std::string& path) {
    std::string contents;
    Status s = ReadFileToString(path, &contents);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return contents;
  }

  std::string dir_;
};

// Installs an injector for the lifetime of the scope.
class ScopedInjector {
 public:
  explicit ScopedInjector(FaultInjector* injector) { SetFaultInjector(injector); }
  ~ScopedInjector() { SetFaultInjector(nullptr); }
};

// Fails every write to `path`.
class FailWrites : public FaultInjector {
 public:
  explicit FailWrites(std::string path) : path_(std::move(path)) {}
  Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) override {
    if (path != path_) return Status::OK();
    ++failed_;
    return Status::IOError("injected write failure");
  }
  int failed_ = 0;

 private:
  std::string path_;
};

// Lets only the first `keep` bytes of each write to `path` reach the file.
class TearWrites : public FaultInjector {
 public:
  TearWrites(std::string path, size_t keep) : path_(std::move(path)), keep_(keep) {}
  Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) override {
    if (path == path_ && *size > keep_) {
      *size = keep_;
      ++torn_;
    }
    return Status::OK();
  }
  int torn_ = 0;

 private:
  std::string path_;
  size_t keep_;
};

// Fails every fsync/fdatasync of `path` (a file or a directory).
class FailSyncs : public FaultInjector {
 public:
  explicit FailSyncs(std::string path) : path_(std::move(path)) {}
  Status BeforeSync(const std::string& path) override {
    if (path != path_) return Status::OK();
    ++failed_;
    return Status::IOError(path + ": injected sync failure");
  }
  int failed_ = 0;

 private:
  std::string path_;
};

// Flips one bit of the byte at file offset `target` whenever a read of `path` covers it.
class FlipBitOnRead : public FaultInjector {
 public:
  FlipBitOnRead(std::string path, uint64_t target) : path_(std::move(path)), target_(target) {}
  Status AfterRead(const std::string& path, uint64_t offset, std::string* data) override {
    if (path == path_ && target_ >= offset && target_ < offset + data->size()) {
      (*data)[target_ - offset] ^= 0x10;
      ++flipped_;
    }
    return Status::OK();
  }
  int flipped_ = 0;

 private:
  std::string path_;
  uint64_t target_;
};

TEST_F(FileTest, WriteThenReadRoundTrips) {
  auto file = OpenOrDie(Path("data"));
  ASSERT_TRUE(file->Write(0, "hello").ok());
  ASSERT_TRUE(file->Write(10, "world").ok());
  std::string out;
  ASSERT_TRUE(file->Read(0, 5, &out).ok());
  EXPECT_EQ(out, "hello");
  ASSERT_TRUE(file->Read(10, 5, &out).ok());
  EXPECT_EQ(out, "world");
  ASSERT_TRUE(file->Read(5, 5, &out).ok());
  EXPECT_EQ(out, std::string(5, '\0')) << "the hole reads as zeros";
  uint64_t size;
  ASSERT_TRUE(file->Size(&size).ok());
  EXPECT_EQ(size, 15u);
  EXPECT_EQ(file->path(), Path("data"));
}

TEST_F(FileTest, OpenMissingFileIsNotFound) {
  std::unique_ptr<File> file;
  EXPECT_TRUE(File::Open(Path("missing"), File::Mode::kReadOnly, &file).IsNotFound());
  EXPECT_TRUE(File::Open(Path("missing"), File::Mode::kReadWrite, &file).IsNotFound());
  // Creating in a directory that is gone (an Env's, removed while open) is an I/O failure.
  Status s = File::Open(Path("no-such-dir/new"), File::Mode::kCreate, &file);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(File::Open(Path("no-such-dir/new"), File::Mode::kCreateTruncate, &file).IsIOError());
  EXPECT_FALSE(PathExists(Path("missing")));
}

// Only regular files open: a directory or a FIFO is InvalidArgument at once (a FIFO would
// otherwise wait for a writer forever).
TEST_F(FileTest, OpenRefusesDirectoriesAndFifos) {
  std::unique_ptr<File> file;
  ASSERT_TRUE(std::filesystem::create_directory(Path("dir")));
  ASSERT_EQ(::mkfifo(Path("fifo").c_str(), 0644), 0);
  for (File::Mode mode : {File::Mode::kReadOnly, File::Mode::kReadWrite, File::Mode::kCreate}) {
    Status s = File::Open(Path("dir"), mode, &file);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_TRUE(Contains(s, "is a directory")) << s.ToString();
    s = File::Open(Path("fifo"), mode, &file);
    EXPECT_TRUE(s.IsInvalidArgument()) << s.ToString();
    EXPECT_TRUE(Contains(s, "not a regular file")) << s.ToString();
  }
  // A regular file opened this way blocks as usual.
  std::unique_ptr<File> regular = OpenOrDie(Path("regular"));
  ASSERT_TRUE(regular->Write(0, "abc").ok());
  std::string read;
  ASSERT_TRUE(regular->Read(0, 3, &read).ok());
  EXPECT_EQ(read, "abc");
}

TEST_F(FileTest, CreateKeepsContentsAndCreateTruncateEmptiesThem) {
  ASSERT_TRUE(OpenOrDie(Path("f"))->Write(0, "abc").ok());
  EXPECT_EQ(Contents(Path("f")), "abc");
  OpenOrDie(Path("f"), File::Mode::kCreate);
  EXPECT_EQ(Contents(Path("f")), "abc");
  OpenOrDie(Path("f"), File::Mode::kCreateTruncate);
  EXPECT_EQ(Contents(Path("f")), "");
}

TEST_F(FileTest, ReadOnlyFileRejectsWrites) {
  OpenOrDie(Path("f"));
  auto file = OpenOrDie(Path("f"), File::Mode::kReadOnly);
  Status s = file->Write(0, "x");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(Contains(s, Path("f"))) << s.ToString();
}

TEST_F(FileTest, ShortReadIsCorruptionNamingThePath) {
  auto file = OpenOrDie(Path("short"));
  ASSERT_TRUE(file->Write(0, "0123456789").ok());
  std::string out = "stale";
  Status s = file->Read(6, 10, &out);
  EXPECT_TRUE(s.IsCorruption()) << s.ToString();
  EXPECT_TRUE(Contains(s, Path("short"))) << s.ToString();
  EXPECT_TRUE(Contains(s, "offset 6")) << s.ToString();
  EXPECT_TRUE(out.empty());
}

TEST_F(FileTest, ReadUpToStopsAtEndOfFile) {
  auto file = OpenOrDie(Path("f"));
  ASSERT_TRUE(file->Write(0, "0123456789").ok());
  std::string out;
  ASSERT_TRUE(file->ReadUpTo(6, 10, &out).ok());
  EXPECT_EQ(out, "6789");
  ASSERT_TRUE(file->ReadUpTo(20, 10, &out).ok());
  EXPECT_EQ(out, "");
}

TEST_F(FileTest, AppendWritesAtTheEnd) {
  auto file = OpenOrDie(Path("log"));
  ASSERT_TRUE(file->Append("one,").ok());
  ASSERT_TRUE(file->Append("two,").ok());
  ASSERT_TRUE(file->Write(0, "ONE").ok());
  ASSERT_TRUE(file->Append("three").ok());
  ASSERT_TRUE(file->Sync().ok());
  EXPECT_EQ(Contents(Path("log")), "ONE,two,three");
}

TEST_F(FileTest, TruncateShrinksAndExtends) {
  auto file = OpenOrDie(Path("f"));
  ASSERT_TRUE(file->Write(0, "0123456789").ok());
  ASSERT_TRUE(file->Truncate(4).ok());
  EXPECT_EQ(Contents(Path("f")), "0123");
  ASSERT_TRUE(file->Truncate(6).ok());
  EXPECT_EQ(Contents(Path("f")), std::string("0123\0\0", 6));
  ASSERT_TRUE(file->Append("x").ok());
  EXPECT_EQ(Contents(Path("f")), std::string("0123\0\0x", 7));
}

TEST_F(FileTest, ReadFileToStringReadsWholeFiles) {
  std::string contents;
  EXPECT_TRUE(ReadFileToString(Path("missing"), &contents).IsNotFound());
  OpenOrDie(Path("empty"));
  EXPECT_EQ(Contents(Path("empty")), "");
  std::string big(100000, 'z');
  big[77777] = 'q';
  ASSERT_TRUE(OpenOrDie(Path("big"))->Write(0, big).ok());
  EXPECT_EQ(Contents(Path("big")), big);
}

TEST_F(FileTest, WriteFileAtomicallyReplacesContentsAndLeavesNoTemporary) {
  ASSERT_TRUE(WriteFileAtomically(Path("CATALOG"), "first version, longer").ok());
  EXPECT_EQ(Contents(Path("CATALOG")), "first version, longer");
  ASSERT_TRUE(WriteFileAtomically(Path("CATALOG"), "second").ok());
  EXPECT_EQ(Contents(Path("CATALOG")), "second");
  std::vector<std::string> names;
  ASSERT_TRUE(ListDir(dir_, &names).ok());
  EXPECT_EQ(names, std::vector<std::string>{"CATALOG"});
}

TEST_F(FileTest, WriteFileAtomicallyThatFailsKeepsTheOldContents) {
  ASSERT_TRUE(WriteFileAtomically(Path("CATALOG"), "old").ok());
  FailSyncs injector(Path("CATALOG") + ".tmp");
  ScopedInjector scoped(&injector);
  Status s = WriteFileAtomically(Path("CATALOG"), "new");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_EQ(injector.failed_, 1);
  EXPECT_EQ(Contents(Path("CATALOG")), "old");
  std::vector<std::string> names;
  ASSERT_TRUE(ListDir(dir_, &names).ok());
  EXPECT_EQ(names, std::vector<std::string>{"CATALOG"}) << "temporary file left behind";
}

TEST_F(FileTest, ListDirListsEntriesInOrder) {
  ASSERT_TRUE(CreateDirIfMissing(Path("sub")).ok());
  for (const char* name : {"b.ft", "a.log", "LOCK", "c"}) OpenOrDie(Path(name));
  std::vector<std::string> names = {"stale"};
  ASSERT_TRUE(ListDir(dir_, &names).ok());
  EXPECT_EQ(names, (std::vector<std::string>{"LOCK", "a.log", "b.ft", "c", "sub"}));
  ASSERT_TRUE(ListDir(Path("sub"), &names).ok());
  EXPECT_TRUE(names.empty());
  Status s = ListDir(Path("missing"), &names);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s, Path("missing"))) << s.ToString();
}

TEST_F(FileTest, DirectoryOperations) {
  ASSERT_TRUE(CreateDirIfMissing(Path("d")).ok());
  ASSERT_TRUE(CreateDirIfMissing(Path("d")).ok()) << "idempotent";
  EXPECT_TRUE(IsDirectory(Path("d")));
  OpenOrDie(Path("file"));
  EXPECT_TRUE(PathExists(Path("file")));
  EXPECT_FALSE(IsDirectory(Path("file")));
  EXPECT_TRUE(CreateDirIfMissing(Path("file")).IsIOError());
  ASSERT_TRUE(RenameFile(Path("file"), Path("d/moved")).ok());
  EXPECT_FALSE(PathExists(Path("file")));
  EXPECT_TRUE(PathExists(Path("d/moved")));
  ASSERT_TRUE(SyncDir(Path("d")).ok());
  ASSERT_TRUE(RemoveFile(Path("d/moved")).ok());
  EXPECT_FALSE(PathExists(Path("d/moved")));
  Status s = RemoveFile(Path("d/moved"));
  EXPECT_TRUE(s.IsIOError());
  EXPECT_TRUE(Contains(s, Path("d/moved"))) << s.ToString();
}

TEST_F(FileTest, SecondFileLockOnTheSamePathFails) {
  std::unique_ptr<FileLock> first;
  ASSERT_TRUE(FileLock::Acquire(Path("LOCK"), &first).ok());
  std::unique_ptr<FileLock> second;
  Status s = FileLock::Acquire(Path("LOCK"), &second);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(Contains(s, Path("LOCK"))) << s.ToString();
  EXPECT_EQ(second, nullptr);
  first.reset();
  ASSERT_TRUE(FileLock::Acquire(Path("LOCK"), &second).ok()) << "released on destruction";
  std::unique_ptr<FileLock> other;
  EXPECT_TRUE(FileLock::Acquire(Path("OTHER_LOCK"), &other).ok());
}

TEST_F(FileTest, FileLockInMissingDirectoryIsIOError) {
  std::unique_ptr<FileLock> lock;
  Status s = FileLock::Acquire(Path("missing/LOCK"), &lock);
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
}

TEST_F(FileTest, InjectedWriteFailureLeavesTheFileUntouched) {
  auto file = OpenOrDie(Path("target"));
  auto bystander = OpenOrDie(Path("bystander"));
  ASSERT_TRUE(file->Write(0, "before").ok());
  FailWrites injector(Path("target"));
  ScopedInjector scoped(&injector);
  EXPECT_TRUE(file->Write(0, "AFTER!").IsIOError());
  EXPECT_TRUE(file->Append("more").IsIOError());
  EXPECT_EQ(injector.failed_, 2);
  EXPECT_TRUE(bystander->Write(0, "fine").ok()) << "other paths are not affected";
  SetFaultInjector(nullptr);
  EXPECT_EQ(Contents(Path("target")), "before");
}

TEST_F(FileTest, TornWriteKeepsOnlyAPrefixAndReportsIOError) {
  auto file = OpenOrDie(Path("log"));
  ASSERT_TRUE(file->Append("record-1;").ok());
  TearWrites injector(Path("log"), 3);
  ScopedInjector scoped(&injector);
  Status s = file->Append("record-2;");
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(Contains(s, "torn")) << s.ToString();
  EXPECT_TRUE(Contains(s, Path("log"))) << s.ToString();
  EXPECT_EQ(injector.torn_, 1);
  SetFaultInjector(nullptr);
  EXPECT_EQ(Contents(Path("log")), "record-1;rec");
}

TEST_F(FileTest, InjectorCannotLengthenAWrite) {
  // An injector that raises the size must not make the file layer write past the caller's
  // buffer.
  class Lengthen : public FaultInjector {
   public:
    Status BeforeWrite(const std::string& path, uint64_t offset, size_t* size) override {
      *size += 4096;
      return Status::OK();
    }
  } injector;
  auto file = OpenOrDie(Path("f"));
  {
    ScopedInjector scoped(&injector);
    EXPECT_TRUE(file->Write(0, "abc").ok());
  }
  EXPECT_EQ(Contents(Path("f")), "abc");
}

TEST_F(FileTest, InjectedSyncFailureIsReported) {
  auto file = OpenOrDie(Path("f"));
  ASSERT_TRUE(file->Write(0, "data").ok());
  FailSyncs injector(Path("f"));
  ScopedInjector scoped(&injector);
  Status s = file->Sync();
  EXPECT_TRUE(s.IsIOError()) << s.ToString();
  EXPECT_TRUE(Contains(s, "injected sync failure"));
  EXPECT_EQ(injector.failed_, 1);

  FailSyncs dir_injector(dir_);
  SetFaultInjector(&dir_injector);
  EXPECT_TRUE(SyncDir(dir_).IsIOError());
  EXPECT_TRUE(WriteFileAtomically(Path("CATALOG"), "x").IsIOError())
      << "the directory sync is part of the promise";
  EXPECT_EQ(dir_injector.failed_, 2);
}

TEST_F(FileTest, InjectedBitFlipOnReadIsSeenByTheReader) {
  const std::string data(4096, 'a');
  ASSERT_TRUE(OpenOrDie(Path("block"))->Write(0, data).ok());
  const uint64_t expected = Checksum64(data);
  FlipBitOnRead injector(Path("block"), 1000);
  ScopedInjector scoped(&injector);
  auto file = OpenOrDie(Path("block"), File::Mode::kReadOnly);
  std::string out;
  ASSERT_TRUE(file->Read(0, 4096, &out).ok());
  EXPECT_EQ(injector.flipped_, 1);
  EXPECT_NE(out, data);
  EXPECT_EQ(out[1000], 'a' ^ 0x10);
  EXPECT_NE(Checksum64(out), expected) << "the checksum is what catches it";
  ASSERT_TRUE(file->Read(0, 1000, &out).ok());
  EXPECT_EQ(out, data.substr(0, 1000)) << "reads not covering the byte are clean";
  EXPECT_EQ(injector.flipped_, 1);
}

TEST_F(FileTest, InjectedReadFailurePropagates) {
  class FailReads : public FaultInjector {
   public:
    Status AfterRead(const std::string& path, uint64_t offset, std::string* data) override {
      return Status::IOError(path + ": injected read failure");
    }
  } injector;
  ASSERT_TRUE(OpenOrDie(Path("f"))->Write(0, "abc").ok());
  ScopedInjector scoped(&injector);
  std::string out;
  EXPECT_TRUE(ReadFileToString(Path("f"), &out).IsIOError());
}

TEST(ParentDirTest, IsWhatPrecedesTheLastSlash) {
  EXPECT_EQ(ParentDir("/tmp/env/CATALOG"), "/tmp/env");
  EXPECT_EQ(ParentDir("/env"), "/");
  EXPECT_EQ(ParentDir("env"), ".");
  EXPECT_EQ(ParentDir("a/b"), "a");
}

}  // namespace
}  // namespace fern
