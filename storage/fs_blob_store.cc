#include "storage/fs_blob_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <vector>

#include "core/fs.h"
#include "core/random.h"
#include "storage/internal/staging_id.h"

namespace sigil::storage {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

bool IsHex64(std::string_view name) {
  if (name.size() != 64) return false;
  for (char c : name) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

int64_t MtimeMicros(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1'000'000 + st.st_mtim.tv_nsec / 1000;
}

// Lists the names in a directory except "." and "..".
core::Result<std::vector<std::string>> ListDir(const std::string& path) {
  DIR* dir = ::opendir(path.c_str());
  if (dir == nullptr) return core::ErrnoStatus(errno, "open directory " + path);
  std::vector<std::string> names;
  errno = 0;
  while (struct dirent* entry = ::readdir(dir)) {
    std::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
    errno = 0;
  }
  int err = errno;
  ::closedir(dir);
  if (err != 0) return core::ErrnoStatus(err, "read directory " + path);
  return names;
}

class FdReader : public BlobReader {
 public:
  FdReader(core::UniqueFd fd, uint64_t size) : fd_(std::move(fd)), size_(size) {}
  uint64_t size() const override { return size_; }
  core::Result<size_t> ReadAt(uint64_t offset, void* buf, size_t n) override {
    if (offset >= size_) return size_t{0};
    return core::PreadSome(fd_.get(), buf, n, offset);
  }
  int fd() const override { return fd_.get(); }

 private:
  core::UniqueFd fd_;
  uint64_t size_;
};

class FsBlobStore : public BlobStore {
 public:
  FsBlobStore(std::string root, const FsBlobStoreOptions& options)
      : blobs_dir_(core::JoinPath(root, "blobs/sha256")),
        uploads_dir_(core::JoinPath(root, "uploads")),
        tmp_dir_(core::JoinPath(root, "tmp")),
        reserve_bytes_(options.reserve_bytes) {}

  core::Status Init() {
    RETURN_IF_ERROR(core::MakeDirs(uploads_dir_));
    RETURN_IF_ERROR(core::MakeDirs(tmp_dir_));
    // Every prefix directory exists from the start, so a commit never has to
    // create (and make durable) a directory on its way.
    for (char a : std::string_view(kHexDigits)) {
      for (char b : std::string_view(kHexDigits)) {
        std::string dir = core::JoinPath(blobs_dir_, std::string{a, b});
        if (!core::PathExists(dir)) RETURN_IF_ERROR(core::MakeDirs(dir));
      }
    }
    RETURN_IF_ERROR(core::FsyncDir(blobs_dir_));
    RETURN_IF_ERROR(core::FsyncDir(core::DirName(blobs_dir_)));
    RETURN_IF_ERROR(core::FsyncDir(core::DirName(uploads_dir_)));
    // Temp files are private to a Put that was interrupted by a crash; one
    // process owns a root, so whatever is left here is garbage.
    ASSIGN_OR_RETURN(std::vector<std::string> leftovers, ListDir(tmp_dir_));
    for (const auto& name : leftovers) {
      RETURN_IF_ERROR(core::RemoveFile(core::JoinPath(tmp_dir_, name)));
    }
    return core::OkStatus();
  }

  // A blob written again counts as new for garbage collection's grace
  // period: the push that wrote it is about to reference it.
  static core::Status Touch(const std::string& path) {
    if (::utimensat(AT_FDCWD, path.c_str(), nullptr, 0) != 0 && errno != ENOENT) {
      return core::ErrnoStatus(errno, "touch " + path);
    }
    return core::OkStatus();
  }

  core::Result<BlobInfo> Stat(const core::Digest& digest) override {
    struct stat st {};
    if (::stat(BlobPath(digest).c_str(), &st) != 0) return BlobError(errno, digest, "stat");
    return BlobInfo{digest, static_cast<uint64_t>(st.st_size), MtimeMicros(st)};
  }

  core::Result<std::unique_ptr<BlobReader>> Open(const core::Digest& digest) override {
    core::UniqueFd fd(::open(BlobPath(digest).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return BlobError(errno, digest, "open");
    return MakeReader(std::move(fd), "blob " + digest.ToString());
  }

  core::Status Put(const core::Digest& digest, std::string_view bytes) override {
    if (core::Sha256::Of(bytes) != digest) {
      return core::InvalidArgument("content does not hash to " + digest.ToString(), "DIGEST_MISMATCH");
    }
    std::string path = BlobPath(digest);
    if (core::PathExists(path)) return Touch(path);
    // The bytes are written under tmp/ so the blob namespace never holds a
    // partial file; each writer has its own temp name, and the rename makes
    // concurrent Puts of one digest all succeed with a single copy.
    RETURN_IF_ERROR(CheckRoom(bytes.size()).Annotate("storing blob " + digest.ToString()));
    std::string tmp = core::JoinPath(tmp_dir_, digest.Hex() + "." + core::RandomHex(8));
    core::UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return core::ErrnoStatus(errno, "create " + tmp);
    core::Status s = core::WriteAll(fd.get(), bytes.data(), bytes.size(), tmp);
    if (s.ok() && ::fsync(fd.get()) != 0) s = core::ErrnoStatus(errno, "fsync " + tmp);
    fd.Reset();
    if (s.ok() && ::rename(tmp.c_str(), path.c_str()) != 0) s = core::ErrnoStatus(errno, "rename " + tmp);
    if (!s.ok()) {
      ::unlink(tmp.c_str());
      return s.Annotate("storing blob " + digest.ToString());
    }
    return core::FsyncDir(core::DirName(path));
  }

  core::Status Delete(const core::Digest& digest) override {
    std::string path = BlobPath(digest);
    if (::unlink(path.c_str()) != 0) return BlobError(errno, digest, "delete");
    return core::FsyncDir(core::DirName(path));
  }

  core::Status ForEach(const std::function<bool(const BlobInfo&)>& fn) override {
    ASSIGN_OR_RETURN(std::vector<std::string> prefixes, ListDir(blobs_dir_));
    for (const auto& prefix : prefixes) {
      if (prefix.size() != 2) continue;
      std::string dir = core::JoinPath(blobs_dir_, prefix);
      ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(dir));
      for (const auto& name : names) {
        // Anything that is not a whole blob (a stray file, a wrong prefix)
        // is not reported as one.
        if (!IsHex64(name) || name.compare(0, 2, prefix) != 0) continue;
        struct stat st {};
        if (::stat(core::JoinPath(dir, name).c_str(), &st) != 0) {
          if (errno == ENOENT) continue;  // deleted while we walked
          return core::ErrnoStatus(errno, "stat " + name);
        }
        if (!S_ISREG(st.st_mode)) continue;
        auto digest = core::Digest::FromHex(name);
        if (!digest.ok()) continue;
        if (!fn(BlobInfo{*digest, static_cast<uint64_t>(st.st_size), MtimeMicros(st)})) {
          return core::OkStatus();
        }
      }
    }
    return core::OkStatus();
  }

  core::Status CreateStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::string path = StagingPath(id);
    core::UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (!fd.valid()) return core::ErrnoStatus(errno, "create staging " + id);
    // The new name must survive a crash before any chunk is acknowledged.
    return core::FsyncDir(uploads_dir_);
  }

  core::Result<uint64_t> StagingSize(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    struct stat st {};
    if (::stat(StagingPath(id).c_str(), &st) != 0) return StagingError(errno, id, "stat");
    return static_cast<uint64_t>(st.st_size);
  }

  core::Status WriteStaging(const std::string& id, uint64_t offset, std::string_view data) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    RETURN_IF_ERROR(CheckRoom(data.size()).Annotate("staging " + id));
    core::UniqueFd fd(::open(StagingPath(id).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return StagingError(errno, id, "open");
    return core::PwriteAll(fd.get(), data.data(), data.size(), offset, "staging " + id);
  }

  core::Status TruncateStaging(const std::string& id, uint64_t size) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    core::UniqueFd fd(::open(StagingPath(id).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return StagingError(errno, id, "open");
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return StagingError(errno, id, "stat");
    if (static_cast<uint64_t>(st.st_size) <= size) return core::OkStatus();
    if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return StagingError(errno, id, "truncate");
    if (::fsync(fd.get()) != 0) return StagingError(errno, id, "fsync");
    return core::OkStatus();
  }

  core::Status SyncStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    core::UniqueFd fd(::open(StagingPath(id).c_str(), O_WRONLY | O_CLOEXEC));
    if (!fd.valid()) return StagingError(errno, id, "open");
    if (::fsync(fd.get()) != 0) return StagingError(errno, id, "fsync");
    return core::OkStatus();
  }

  core::Result<std::unique_ptr<BlobReader>> OpenStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    core::UniqueFd fd(::open(StagingPath(id).c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return StagingError(errno, id, "open");
    return MakeReader(std::move(fd), "staging " + id);
  }

  core::Status CommitStaging(const std::string& id, const core::Digest& digest) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    std::string staging = StagingPath(id);
    std::string path = BlobPath(digest);
    {
      core::UniqueFd fd(::open(staging.c_str(), O_WRONLY | O_CLOEXEC));
      if (!fd.valid()) return StagingError(errno, id, "open");
      if (core::PathExists(path)) {
        fd.Reset();
        RETURN_IF_ERROR(Touch(path));
        return RemoveStaging(id);
      }
      if (::fsync(fd.get()) != 0) return StagingError(errno, id, "fsync");
    }
    // Two sessions committing the same digest both rename identical bytes;
    // the later one replaces the earlier atomically, so a reader never sees
    // a partial blob and the result is one copy.
    if (::rename(staging.c_str(), path.c_str()) != 0) {
      return core::ErrnoStatus(errno, "commit staging " + id + " as " + digest.ToString());
    }
    RETURN_IF_ERROR(core::FsyncDir(core::DirName(path)));
    return core::FsyncDir(uploads_dir_);
  }

  core::Status RemoveStaging(const std::string& id) override {
    RETURN_IF_ERROR(CheckStagingId(id));
    return core::RemoveFile(StagingPath(id));
  }

  core::Status ForEachStaging(const std::function<bool(const std::string& id)>& fn) override {
    ASSIGN_OR_RETURN(std::vector<std::string> names, ListDir(uploads_dir_));
    for (const auto& name : names) {
      if (!IsValidStagingId(name)) continue;
      if (!fn(name)) break;
    }
    return core::OkStatus();
  }

  core::Status CheckHealth() override {
    for (const std::string& dir : {tmp_dir_, uploads_dir_, blobs_dir_}) {
      std::string probe = core::JoinPath(dir, ".probe-" + core::RandomHex(8));
      core::UniqueFd fd(::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
      if (!fd.valid()) return core::ErrnoStatus(errno, "blob store not writable: create " + probe);
      fd.Reset();
      RETURN_IF_ERROR(core::RemoveFile(probe));
    }
    return core::OkStatus();
  }

 private:
  std::string BlobPath(const core::Digest& digest) const {
    std::string hex = digest.Hex();
    return blobs_dir_ + "/" + hex.substr(0, 2) + "/" + hex;
  }
  std::string StagingPath(const std::string& id) const { return core::JoinPath(uploads_dir_, id); }

  static core::Status BlobError(int err, const core::Digest& digest, std::string_view op) {
    if (err == ENOENT) return core::NotFound("blob " + digest.ToString() + " not found", "BLOB_UNKNOWN");
    return core::ErrnoStatus(err, std::string(op) + " blob " + digest.ToString());
  }
  // Refuses a write of n bytes that would eat into the reserve.
  core::Status CheckRoom(uint64_t n) const {
    if (reserve_bytes_ == 0) return core::OkStatus();
    struct statvfs st {};
    if (::statvfs(blobs_dir_.c_str(), &st) != 0) return core::ErrnoStatus(errno, "statvfs " + blobs_dir_);
    uint64_t free = static_cast<uint64_t>(st.f_bavail) * st.f_frsize;
    if (free >= reserve_bytes_ && free - reserve_bytes_ >= n) return core::OkStatus();
    return core::ResourceExhausted("not writing " + std::to_string(n) + " bytes: the disk has " +
                                       std::to_string(free) + " bytes free and " + std::to_string(reserve_bytes_) +
                                       " are kept free for metadata",
                                   "INSUFFICIENT_STORAGE");
  }

  static core::Status StagingError(int err, const std::string& id, std::string_view op) {
    if (err == ENOENT) return core::NotFound("no staging " + id);
    return core::ErrnoStatus(err, std::string(op) + " staging " + id);
  }

  static core::Result<std::unique_ptr<BlobReader>> MakeReader(core::UniqueFd fd, const std::string& what) {
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return core::ErrnoStatus(errno, "stat " + what);
    return std::unique_ptr<BlobReader>(new FdReader(std::move(fd), static_cast<uint64_t>(st.st_size)));
  }

  const std::string blobs_dir_;
  const std::string uploads_dir_;
  const std::string tmp_dir_;
  const uint64_t reserve_bytes_;
};

}  // namespace

core::Result<std::unique_ptr<BlobStore>> OpenFsBlobStore(const std::string& root, const FsBlobStoreOptions& options) {
  auto store = std::make_unique<FsBlobStore>(root, options);
  core::Status s = store->Init();
  if (!s.ok()) return s.Annotate("opening blob store at " + root);
  return std::unique_ptr<BlobStore>(std::move(store));
}

}  // namespace sigil::storage
