#include "cli/model_files.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <system_error>

#include "cli/sniff.h"
#include "registry/names.h"

namespace sigil::cli {
namespace {

namespace fs = std::filesystem;

core::Status FsError(const std::error_code& ec, const std::string& what) {
  return core::ErrnoStatus(ec.value(), what);
}

// True when target is root itself or below it. Both are canonical.
bool IsInside(const fs::path& target, const fs::path& root) {
  auto t = target.begin();
  for (auto r = root.begin(); r != root.end(); ++r, ++t) {
    if (t == target.end() || *t != *r) return false;
  }
  return true;
}

core::Result<LocalFile> Entry(const fs::path& file, const fs::path& root_canonical,
                              const std::string& title) {
  struct stat lst {};
  if (::lstat(file.c_str(), &lst) != 0) return core::ErrnoStatus(errno, "stat " + file.string());
  if (S_ISLNK(lst.st_mode)) {
    std::error_code ec;
    fs::path target = fs::canonical(file, ec);
    if (ec) {
      return core::InvalidArgument("symlink " + file.string() + " does not resolve: " +
                                   ec.message());
    }
    if (!IsInside(target, root_canonical)) {
      return core::InvalidArgument("symlink " + file.string() + " points outside " +
                                   root_canonical.string() + " (to " + target.string() + ")");
    }
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) return core::ErrnoStatus(errno, "stat " + file.string());
  if (S_ISDIR(st.st_mode)) {
    return core::InvalidArgument("symlink " + file.string() +
                                 " names a directory; only regular files are pushed");
  }
  if (!S_ISREG(st.st_mode)) {
    return core::InvalidArgument(file.string() + " is not a regular file");
  }
  core::Status s = registry::ValidateFilePath(title);
  if (!s.ok()) return core::InvalidArgument("cannot push " + file.string() + ": " + s.message());
  return LocalFile{file.string(), title, static_cast<uint64_t>(st.st_size)};
}

}  // namespace

core::Result<std::vector<LocalFile>> ListModelFiles(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return core::ErrnoStatus(errno, path);
  std::vector<LocalFile> out;
  if (!S_ISDIR(st.st_mode)) {
    fs::path p(path);
    std::error_code ec;
    fs::path canonical = fs::canonical(p, ec);
    if (ec) return FsError(ec, "resolve " + path);
    ASSIGN_OR_RETURN(LocalFile f, Entry(p, canonical.parent_path(), p.filename().string()));
    out.push_back(std::move(f));
    return out;
  }

  std::error_code ec;
  fs::path root(path);
  fs::path root_canonical = fs::canonical(root, ec);
  if (ec) return FsError(ec, "resolve " + path);
  fs::recursive_directory_iterator it(root, fs::directory_options::none, ec);
  if (ec) return FsError(ec, "list " + path);
  for (; it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) return FsError(ec, "list " + path);
    const fs::directory_entry& entry = *it;
    // The iterator does not descend into symlinked directories; Entry()
    // refuses them.
    if (entry.is_directory(ec) && !entry.is_symlink(ec)) continue;
    std::string title = entry.path().lexically_relative(root).generic_string();
    ASSIGN_OR_RETURN(LocalFile f, Entry(entry.path(), root_canonical, title));
    out.push_back(std::move(f));
  }
  if (ec) return FsError(ec, "list " + path);
  if (out.empty()) return core::InvalidArgument(path + " holds no files to push");
  std::sort(out.begin(), out.end(),
            [](const LocalFile& a, const LocalFile& b) { return a.title < b.title; });
  return out;
}

core::Result<std::string> GuessModelFormat(const std::vector<LocalFile>& files) {
  std::string best = "unknown";
  uint64_t best_size = 0;
  bool found = false;
  for (const LocalFile& f : files) {
    ASSIGN_OR_RETURN(std::string format, SniffFile(f.path, f.title));
    if (format == "unknown") continue;
    if (!found || f.size > best_size) {
      best = format;
      best_size = f.size;
      found = true;
    }
  }
  return best;
}

}  // namespace sigil::cli
