#include "cli/pull.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "cli/progress.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/manifest.h"
#include "registry/names.h"

namespace sigil::cli {
namespace {

using core::Status;

Status BadTitle(const std::string& title, const std::string& why) {
  std::string shown;
  for (unsigned char c : title.substr(0, 200)) {
    shown += (c < 0x20 || c == 0x7f) ? '?' : static_cast<char>(c);
  }
  return core::InvalidArgument("refusing file '" + shown + "' from the server: " + why,
                               "PATH_INVALID");
}

struct Counters {
  std::atomic<uint64_t> downloaded{0};
  std::atomic<uint64_t> reused{0};
};

// Fetches one blob into its partial file and verifies it.
class Downloader {
 public:
  Downloader(const PullOptions& options, Counters* counters, Progress* progress,
             const std::atomic<bool>* stop)
      : options_(options),
        http_(options.server),
        counters_(counters),
        progress_(progress),
        stop_(stop) {}

  Status Fetch(const PullFile& file, const std::string& partial) {
    uint64_t reused = 0;
    RETURN_IF_ERROR(Download(file, partial, &reused));
    ASSIGN_OR_RETURN(core::Digest got, core::HashFile(partial));
    if (got == file.digest) {
      counters_->reused += reused;
      return core::OkStatus();
    }
    // A partial from an earlier run may hold wrong bytes (another server,
    // a disk error): start it over once.
    RETURN_IF_ERROR(core::RemoveFile(partial));
    if (reused > 0) {
      progress_->Undo(file.size - reused);
      uint64_t again = 0;
      RETURN_IF_ERROR(Download(file, partial, &again));
      ASSIGN_OR_RETURN(got, core::HashFile(partial));
      if (got == file.digest) return core::OkStatus();
      RETURN_IF_ERROR(core::RemoveFile(partial));
    }
    return core::DataLoss("'" + file.title + "' downloaded as " + got.ToString() +
                              ", expected " + file.digest.ToString(),
                          "DIGEST_MISMATCH");
  }

 private:
  // Downloads until the partial file holds file.size bytes; *reused is what
  // was already there.
  Status Download(const PullFile& file, const std::string& partial, uint64_t* reused) {
    core::UniqueFd fd(::open(partial.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
    if (!fd.valid()) return core::ErrnoStatus(errno, "open " + partial);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return core::ErrnoStatus(errno, "stat " + partial);
    uint64_t have = static_cast<uint64_t>(st.st_size);
    if (have > file.size) {
      if (::ftruncate(fd.get(), 0) != 0) return core::ErrnoStatus(errno, "truncate " + partial);
      have = 0;
    }
    *reused = have;
    progress_->Skip(have);
    const std::string digest = file.digest.ToString();
    Backoff backoff(options_.retry_budget);
    while (have < file.size) {
      uint64_t start = have;
      bool first = true;
      HttpRequest get{.method = "GET", .path = "/api/v1/blobs/" + digest};
      if (have > 0) get.headers.push_back("Range: bytes=" + std::to_string(have) + "-");
      get.sink = [&](long status, const char* data, size_t n) -> Status {
        if (stop_->load()) return core::Cancelled("download of '" + file.title + "' stopped");
        if (first) {
          first = false;
          if (status == 200 && have > 0) {
            // The server sent the whole blob instead of the range.
            if (::ftruncate(fd.get(), 0) != 0) {
              return core::ErrnoStatus(errno, "truncate " + partial);
            }
            progress_->Undo(have);
            have = 0;
          }
        }
        if (have + n > file.size) {
          return core::DataLoss("server sent more than the " + std::to_string(file.size) +
                                " bytes of '" + file.title + "'");
        }
        RETURN_IF_ERROR(core::PwriteAll(fd.get(), data, n, have, partial));
        have += n;
        counters_->downloaded += n;
        progress_->Add(n);
        return core::OkStatus();
      };
      auto r = http_.Perform(get);
      if (have > start) backoff.Reset();
      if (!r.ok()) {
        if (IsTransientStatus(r.status()) && backoff.Wait()) continue;
        return r.status().Annotate("download '" + file.title + "'");
      }
      if (r->ok()) continue;  // a short body is resumed by the loop
      if (IsTransientHttp(r->status) && backoff.Wait()) continue;
      return ErrorFromResponse(*r).Annotate("download '" + file.title + "'");
    }
    if (::fsync(fd.get()) != 0) return core::ErrnoStatus(errno, "fsync " + partial);
    return core::OkStatus();
  }

  const PullOptions& options_;
  HttpClient http_;
  Counters* counters_;
  Progress* progress_;
  const std::atomic<bool>* stop_;  // another worker failed
};

// A version's files are refused while its scan runs (PENDING_SCAN) and once
// it is quarantined (QUARANTINED). Waits for a pending scan within the retry
// budget, re-reading *version; refuses a quarantined version with the
// scan's findings before anything is written.
Status WaitUntilPullable(HttpClient& http, const std::string& path, const Reference& ref,
                         core::Json* version, std::chrono::milliseconds budget) {
  Backoff backoff(budget);
  while (true) {
    auto state = core::GetString(*version, "state");
    if (!state.ok() || *state == "available") return core::OkStatus();
    if (*state == "pending") {
      if (!backoff.Wait()) {
        return core::FailedPrecondition(
            ref.ToString() + " is still being scanned; pull it once it is available", "PENDING_SCAN");
      }
      ASSIGN_OR_RETURN(HttpResponse vr, PerformWithRetry(http, HttpRequest{.path = path}, budget));
      if (!vr.ok()) return ErrorFromResponse(vr);
      ASSIGN_OR_RETURN(*version, core::ParseJson(vr.body));
      continue;
    }
    std::string message = ref.ToString() + " is " + *state;
    std::string detail;
    ASSIGN_OR_RETURN(HttpResponse sr, PerformWithRetry(http, HttpRequest{.path = path + "/scan"}, budget));
    auto scan = sr.ok() ? core::ParseJson(sr.body) : core::Result<core::Json>(core::Json());
    if (scan.ok() && scan->is_object() && scan->contains("summary") && (*scan)["summary"].is_object()) {
      const core::Json& summary = (*scan)["summary"];
      detail = core::DumpJson(summary);
      if (summary.contains("findings") && summary["findings"].is_array() && !summary["findings"].empty()) {
        const core::Json& f = summary["findings"][0];
        message += ": " + f.value("path", std::string()) + ": " + f.value("rule", std::string()) + " (" +
                   f.value("severity", std::string()) + ") " + f.value("message", std::string());
      }
    }
    return Status(core::Code::kPermissionDenied, message, "QUARANTINED", detail);
  }
}

Status CopyFile(const std::string& from, const std::string& to) {
  core::UniqueFd in(::open(from.c_str(), O_RDONLY | O_CLOEXEC));
  if (!in.valid()) return core::ErrnoStatus(errno, "open " + from);
  core::UniqueFd out(::open(to.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!out.valid()) return core::ErrnoStatus(errno, "create " + to);
  std::vector<char> buf(1 << 20);
  uint64_t offset = 0;
  while (true) {
    ASSIGN_OR_RETURN(size_t n, core::PreadSome(in.get(), buf.data(), buf.size(), offset));
    if (n == 0) break;
    RETURN_IF_ERROR(core::WriteAll(out.get(), buf.data(), n, to));
    offset += n;
  }
  if (::fsync(out.get()) != 0) return core::ErrnoStatus(errno, "fsync " + to);
  return core::OkStatus();
}

}  // namespace

Status CheckTitles(const std::vector<PullFile>& files) {
  std::set<std::string> titles;
  for (const PullFile& f : files) {
    Status s = registry::ValidateFilePath(f.title);
    if (!s.ok()) return BadTitle(f.title, s.message());
    std::string first = f.title.substr(0, f.title.find('/'));
    if (first == kPartialDir) return BadTitle(f.title, "names the client's partial directory");
    if (!titles.insert(f.title).second) return BadTitle(f.title, "appears twice");
  }
  // "a" and "a/b" cannot both be files. In sorted order a directory's
  // entries follow it after its "/" ... but other names ("a.txt") may sit in
  // between, so each title's parents are looked up directly.
  for (const std::string& t : titles) {
    for (size_t slash = t.find('/'); slash != std::string::npos; slash = t.find('/', slash + 1)) {
      if (titles.count(t.substr(0, slash)) != 0) {
        return BadTitle(t, "'" + t.substr(0, slash) + "' is both a file and a directory");
      }
    }
  }
  return core::OkStatus();
}

core::Result<PullResult> Pull(const Reference& ref, const std::string& dir,
                              const PullOptions& options) {
  HttpClient http(options.server);
  const std::string base = "/api/v1/models/" + ref.repository + "/versions/";
  ASSIGN_OR_RETURN(HttpResponse vr, PerformWithRetry(http, HttpRequest{.path = base + ref.ref()},
                                                     options.retry_budget));
  if (!vr.ok()) return ErrorFromResponse(vr);
  ASSIGN_OR_RETURN(core::Json version, core::ParseJson(vr.body));
  ASSIGN_OR_RETURN(std::string digest_text, core::GetString(version, "digest"));
  ASSIGN_OR_RETURN(core::Digest digest, core::Digest::Parse(digest_text));
  if (!ref.digest.empty() && digest.ToString() != ref.digest) {
    return core::DataLoss("server answered " + digest.ToString() + " for " + ref.ToString());
  }
  RETURN_IF_ERROR(WaitUntilPullable(http, base + digest.ToString(), ref, &version, options.retry_budget));

  // The manifest by digest, so that an alias moving meanwhile cannot mix
  // two versions.
  ASSIGN_OR_RETURN(
      HttpResponse mr,
      PerformWithRetry(http, HttpRequest{.path = base + digest.ToString() + "/manifest"},
                       options.retry_budget));
  if (!mr.ok()) return ErrorFromResponse(mr);
  if (core::Sha256::Of(mr.body) != digest) {
    return core::DataLoss("manifest of " + ref.ToString() + " does not match its digest " +
                              digest.ToString(),
                          "DIGEST_MISMATCH");
  }
  auto manifest = registry::ParseManifest(mr.body);
  if (!manifest.ok()) return manifest.status().Annotate("manifest of " + ref.ToString());

  std::vector<PullFile> files;
  for (const registry::Descriptor& layer : manifest->layers) {
    auto title = layer.annotations.find(std::string(registry::kTitleAnnotation));
    if (title == layer.annotations.end()) {
      return core::InvalidArgument("a layer of " + ref.ToString() + " has no title",
                                   "PATH_INVALID");
    }
    files.push_back(PullFile{title->second, layer.digest, layer.size});
  }
  RETURN_IF_ERROR(CheckTitles(files));
  if (options.before_download) RETURN_IF_ERROR(options.before_download(mr.body));

  PullResult result;
  result.repository = ref.repository;
  auto v = core::GetString(version, "version");
  result.version = v.ok() ? *v : ref.ref();
  result.digest = digest.ToString();
  result.files = files.size();

  // Nothing in DIR may be in the way of a rename: check before fetching.
  for (const PullFile& f : files) {
    std::string dest = core::JoinPath(dir, f.title);
    struct stat st {};
    if (::lstat(dest.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
      return core::FailedPrecondition(dest + " is a directory; cannot write '" + f.title + "'");
    }
  }

  const std::string partial_dir = core::JoinPath(dir, kPartialDir);
  RETURN_IF_ERROR(core::MakeDirs(partial_dir, 0700));

  std::vector<const PullFile*> blobs;
  std::map<core::Digest, int> users;
  for (const PullFile& f : files) {
    if (users[f.digest]++ == 0) blobs.push_back(&f);
  }
  for (const PullFile* b : blobs) result.bytes_total += b->size;
  std::sort(blobs.begin(), blobs.end(),
            [](const PullFile* a, const PullFile* b) { return a->size > b->size; });
  auto partial_of = [&](const core::Digest& d) { return core::JoinPath(partial_dir, d.Hex()); };

  Counters counters;
  std::atomic<bool> failed{false};
  {
    Progress progress("download", result.bytes_total, options.progress);
    progress.Start();
    int threads = std::max(1, std::min<int>(options.jobs, static_cast<int>(blobs.size())));
    std::vector<std::unique_ptr<Downloader>> workers;
    for (int i = 0; i < threads; ++i) {
      workers.push_back(std::make_unique<Downloader>(options, &counters, &progress, &failed));
    }
    std::atomic<size_t> next{0};
    std::mutex mu;
    Status first;
    std::vector<std::thread> pool;
    for (int w = 0; w < threads; ++w) {
      pool.emplace_back([&, w] {
        while (!failed) {
          size_t i = next.fetch_add(1);
          if (i >= blobs.size()) return;
          Status s = workers[w]->Fetch(*blobs[i], partial_of(blobs[i]->digest));
          if (!s.ok()) {
            std::lock_guard<std::mutex> lock(mu);
            if (first.ok()) first = s;
            failed = true;
          }
        }
      });
    }
    for (auto& t : pool) t.join();
    progress.Finish();
    RETURN_IF_ERROR(first);
  }

  // Everything verified: move into place, one atomic rename per file.
  std::set<std::string> dirs_to_sync;
  for (const PullFile& f : files) {
    std::string dest = core::JoinPath(dir, f.title);
    std::string parent = core::DirName(dest);
    RETURN_IF_ERROR(core::MakeDirs(parent));
    std::string source = partial_of(f.digest);
    if (--users[f.digest] > 0) {
      // Another title still needs these bytes: give this one a copy.
      std::string copy = source + ".copy";
      RETURN_IF_ERROR(CopyFile(source, copy));
      source = copy;
    }
    if (::rename(source.c_str(), dest.c_str()) != 0) {
      return core::ErrnoStatus(errno, "rename " + source + " to " + dest);
    }
    dirs_to_sync.insert(parent);
  }
  for (const std::string& d : dirs_to_sync) RETURN_IF_ERROR(core::FsyncDir(d));
  RETURN_IF_ERROR(core::RemoveTree(partial_dir));

  result.bytes_downloaded = counters.downloaded;
  result.bytes_reused = counters.reused;
  return result;
}

}  // namespace sigil::cli
