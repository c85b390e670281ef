#include "cli/push.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "cli/http_client.h"
#include "cli/progress.h"
#include "cli/sniff.h"
#include "cli/upload_state.h"
#include "core/fs.h"
#include "core/json.h"
#include "registry/names.h"

namespace sigil::cli {
namespace {

using core::Status;
using Clock = std::chrono::steady_clock;

// A distinct blob to send: a file on disk, or bytes in memory (the config).
struct Blob {
  core::Digest digest;
  uint64_t size = 0;
  std::string path;    // when from a file
  std::string memory;  // when in memory
  bool in_memory = false;
};

struct Counters {
  std::atomic<uint64_t> bytes_uploaded{0};
  std::atomic<uint64_t> bytes_skipped{0};
  std::atomic<uint64_t> bytes_resumed{0};
  std::atomic<uint64_t> blobs_uploaded{0};
  std::atomic<uint64_t> blobs_skipped{0};
  std::atomic<uint64_t> blobs_resumed{0};
};

// Runs fn(i, worker) for i in [0, n) on `jobs` threads; after the first
// failure sets *failed (which long tasks poll to stop early), hands out no
// more work, and returns that failure.
Status ParallelFor(size_t n, int jobs, std::atomic<bool>* failed,
                   const std::function<Status(size_t, int)>& fn) {
  std::atomic<size_t> next{0};
  std::mutex mu;
  Status first;
  int threads = std::max(1, std::min<int>(jobs, static_cast<int>(n)));
  std::vector<std::thread> workers;
  for (int w = 0; w < threads; ++w) {
    workers.emplace_back([&, w] {
      while (!failed->load()) {
        size_t i = next.fetch_add(1);
        if (i >= n) return;
        Status s = fn(i, w);
        if (!s.ok()) {
          std::lock_guard<std::mutex> lock(mu);
          if (first.ok()) first = s;
          *failed = true;
        }
      }
    });
  }
  for (auto& t : workers) t.join();
  return first;
}

Status ReadExactly(int fd, char* buf, size_t n, uint64_t offset, const std::string& path) {
  size_t got = 0;
  while (got < n) {
    ASSIGN_OR_RETURN(size_t r, core::PreadSome(fd, buf + got, n - got, offset + got));
    if (r == 0) return core::FailedPrecondition(path + " shrank while being pushed");
    got += r;
  }
  return core::OkStatus();
}

core::Result<uint64_t> JsonOffset(const std::string& body) {
  ASSIGN_OR_RETURN(core::Json j, core::ParseJson(body));
  return core::GetUint(j, "offset");
}

// One worker's connection and chunk buffer.
class Uploader {
 public:
  Uploader(const PushOptions& options, UploadState* state, Counters* counters, Progress* progress,
           const std::atomic<bool>* stop)
      : options_(options),
        http_(options.server),
        state_(state),
        counters_(counters),
        progress_(progress),
        stop_(stop) {}

  Status Upload(const Blob& blob);
  // Sends the blob without asking first (it is known to be missing).
  Status Send(const Blob& blob);

 private:
  core::Result<bool> BlobExists(const Blob& blob);
  Status PutWhole(const Blob& blob);
  Status Chunked(const Blob& blob);
  // Opens a session; sets id and chunk_max.
  Status OpenSession(const Blob& blob, std::string* id, uint64_t* chunk_max);
  Status Commit(const Blob& blob, const std::string& id);
  Status ReadChunk(const Blob& blob, int fd, uint64_t offset, size_t n);
  core::Result<HttpResponse> Retry(const HttpRequest& request) {
    return PerformWithRetry(http_, request, options_.retry_budget);
  }
  void ForgetSession(const Blob& blob) {
    if (state_ != nullptr) state_->Remove(options_.server, blob.digest).IgnoreError();
  }

  const PushOptions& options_;
  HttpClient http_;
  UploadState* state_;
  Counters* counters_;
  Progress* progress_;
  const std::atomic<bool>* stop_;  // another worker failed
  std::string buffer_;
};

core::Result<bool> Uploader::BlobExists(const Blob& blob) {
  HttpRequest head{.method = "HEAD", .path = "/api/v1/blobs/" + blob.digest.ToString()};
  ASSIGN_OR_RETURN(HttpResponse r, Retry(head));
  if (r.status == 200) return true;
  if (r.status == 404) return false;
  return ErrorFromResponse(r).Annotate("HEAD " + blob.digest.ToString());
}

Status Uploader::Upload(const Blob& blob) {
  ASSIGN_OR_RETURN(bool exists, BlobExists(blob));
  if (exists) {
    counters_->bytes_skipped += blob.size;
    counters_->blobs_skipped += 1;
    progress_->Skip(blob.size);
    ForgetSession(blob);
    return core::OkStatus();
  }
  return Send(blob);
}

Status Uploader::Send(const Blob& blob) {
  Status s = blob.size < kSmallBlobMax ? PutWhole(blob) : Chunked(blob);
  if (s.ok()) counters_->blobs_uploaded += 1;
  return s;
}

Status Uploader::ReadChunk(const Blob& blob, int fd, uint64_t offset, size_t n) {
  if (blob.in_memory) {
    buffer_.assign(blob.memory, offset, n);
    return core::OkStatus();
  }
  buffer_.resize(n);
  return ReadExactly(fd, buffer_.data(), n, offset, blob.path);
}

Status Uploader::PutWhole(const Blob& blob) {
  core::UniqueFd fd;
  if (!blob.in_memory) {
    fd.Reset(::open(blob.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return core::ErrnoStatus(errno, "open " + blob.path);
  }
  RETURN_IF_ERROR(ReadChunk(blob, fd.get(), 0, blob.size));
  HttpRequest put{.method = "PUT", .path = "/api/v1/blobs/" + blob.digest.ToString(),
                  .body = buffer_};
  ASSIGN_OR_RETURN(HttpResponse r, Retry(put));
  // A server whose chunk_max is below kSmallBlobMax: go through a session.
  if (r.status == 413) return Chunked(blob);
  if (!r.ok()) return ErrorFromResponse(r).Annotate("upload " + blob.digest.ToString());
  counters_->bytes_uploaded += blob.size;
  progress_->Add(blob.size);
  return core::OkStatus();
}

Status Uploader::OpenSession(const Blob& blob, std::string* id, uint64_t* chunk_max) {
  HttpRequest post{.method = "POST", .path = "/api/v1/uploads"};
  ASSIGN_OR_RETURN(HttpResponse r, Retry(post));
  if (!r.ok()) return ErrorFromResponse(r).Annotate("open upload session");
  ASSIGN_OR_RETURN(core::Json j, core::ParseJson(r.body));
  ASSIGN_OR_RETURN(*id, core::GetString(j, "id"));
  ASSIGN_OR_RETURN(*chunk_max, core::GetUint(j, "chunk_max"));
  if (id->empty() || *chunk_max == 0) {
    return core::Internal("server answered an upload session without id or chunk_max");
  }
  if (state_ != nullptr) {
    // Without the state entry the push still works; it only cannot resume.
    state_->Save(options_.server, blob.digest, *id).IgnoreError();
  }
  return core::OkStatus();
}

Status Uploader::Chunked(const Blob& blob) {
  core::UniqueFd fd;
  if (!blob.in_memory) {
    fd.Reset(::open(blob.path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd.valid()) return core::ErrnoStatus(errno, "open " + blob.path);
  }
  const std::string digest = blob.digest.ToString();

  std::string id;
  uint64_t chunk_max = 0;
  uint64_t offset = 0;
  bool have_session = false;
  Backoff backoff(options_.retry_budget);

  // A session left by an earlier run: continue from its committed offset.
  if (state_ != nullptr) {
    if (auto saved = state_->Find(options_.server, blob.digest)) {
      HttpRequest get{.method = "GET", .path = "/api/v1/uploads/" + *saved};
      ASSIGN_OR_RETURN(HttpResponse r, Retry(get));
      if (r.ok()) {
        ASSIGN_OR_RETURN(core::Json j, core::ParseJson(r.body));
        ASSIGN_OR_RETURN(offset, core::GetUint(j, "offset"));
        ASSIGN_OR_RETURN(chunk_max, core::GetUint(j, "chunk_max"));
        if (offset <= blob.size && chunk_max > 0) {
          id = *saved;
          have_session = true;
          counters_->bytes_resumed += offset;
          counters_->blobs_resumed += 1;
          progress_->Skip(offset);
        } else {
          offset = 0;
        }
      } else if (r.status != 404) {
        return ErrorFromResponse(r).Annotate("resume upload " + *saved);
      }
    }
  }
  if (!have_session) RETURN_IF_ERROR(OpenSession(blob, &id, &chunk_max));

  chunk_max = std::min(chunk_max, kMaxChunkBuffer);
  int restarts = 0;
  int mismatches = 0;
  bool need_sync = false;
  while (true) {
    if (stop_->load()) return core::Cancelled("upload " + digest + " stopped");
    if (need_sync) {
      const uint64_t before = offset;
      // The last PATCH may or may not have been committed: ask.
      HttpRequest get{.method = "GET", .path = "/api/v1/uploads/" + id};
      auto r = http_.Perform(get);
      bool transient = r.ok() ? IsTransientHttp(r->status) : IsTransientStatus(r.status());
      if (transient) {
        if (backoff.Wait()) continue;
        Status err = r.ok() ? ErrorFromResponse(*r) : r.status();
        return err.Annotate("upload " + digest);
      }
      if (!r.ok()) return r.status();
      if (r->status == 404) {
        // The session is gone: committed by another push of the same blob
        // (then the blob is there), or expired or lost by the server.
        ASSIGN_OR_RETURN(bool exists, BlobExists(blob));
        if (exists) {
          ForgetSession(blob);
          return core::OkStatus();
        }
        if (++restarts > 3) return core::Aborted("upload " + digest + ": session lost repeatedly");
        RETURN_IF_ERROR(OpenSession(blob, &id, &chunk_max));
        chunk_max = std::min(chunk_max, kMaxChunkBuffer);
        offset = 0;
      } else if (!r->ok()) {
        return ErrorFromResponse(*r).Annotate("upload " + digest);
      } else {
        ASSIGN_OR_RETURN(offset, JsonOffset(r->body));
        // Another client feeding the same session (a second push of the
        // same blob) moves the offset: that is progress, not a loop.
        if (offset > before) mismatches = 0;
      }
      need_sync = false;
    }
    if (offset > blob.size) {
      return core::Internal("upload " + digest + ": server offset " + std::to_string(offset) +
                            " beyond the blob's size " + std::to_string(blob.size));
    }
    if (offset == blob.size) break;

    size_t n = static_cast<size_t>(std::min<uint64_t>(chunk_max, blob.size - offset));
    RETURN_IF_ERROR(ReadChunk(blob, fd.get(), offset, n));
    uint64_t reported = 0;
    HttpRequest patch{
        .method = "PATCH",
        .path = "/api/v1/uploads/" + id,
        .headers = {"Content-Range: bytes " + std::to_string(offset) + "-" +
                    std::to_string(offset + n - 1)},
        .body = buffer_,
        .on_upload_progress =
            [&](uint64_t sent) {
              if (sent > reported) {
                progress_->Add(sent - reported);
                reported = sent;
              }
            },
    };
    auto r = http_.Perform(patch);
    bool accepted = r.ok() && r->status == 202;
    if (!accepted) progress_->Undo(reported);
    if (!r.ok()) {
      if (!IsTransientStatus(r.status()) || !backoff.Wait()) {
        return r.status().Annotate("upload " + digest);
      }
      need_sync = true;
      continue;
    }
    if (accepted) {
      ASSIGN_OR_RETURN(uint64_t next, JsonOffset(r->body));
      if (next > offset) backoff.Reset();
      counters_->bytes_uploaded += n;
      if (reported < n) progress_->Add(n - reported);
      offset = next;
      mismatches = 0;
      continue;
    }
    if (IsTransientHttp(r->status)) {
      if (!backoff.Wait()) return ErrorFromResponse(*r).Annotate("upload " + digest);
      need_sync = true;
      continue;
    }
    Status err = ErrorFromResponse(*r);
    if (r->status == 416 || r->status == 404) {
      // Offset mismatch: the server knows better; UPLOAD_UNKNOWN: the
      // session is gone. Both are settled by asking again.
      if (++mismatches > 5) return err.Annotate("upload " + digest);
      need_sync = true;
      continue;
    }
    return err.Annotate("upload " + digest);
  }
  RETURN_IF_ERROR(Commit(blob, id));
  ForgetSession(blob);
  return core::OkStatus();
}

Status Uploader::Commit(const Blob& blob, const std::string& id) {
  const std::string digest = blob.digest.ToString();
  HttpRequest put{.method = "PUT", .path = "/api/v1/uploads/" + id + "?digest=" + digest};
  ASSIGN_OR_RETURN(HttpResponse r, Retry(put));
  if (r.ok()) return core::OkStatus();
  Status err = ErrorFromResponse(r);
  if (r.status == 404) {
    // A retried commit whose first answer was lost, or another push that
    // committed the same session, finds no session: the blob is there if
    // that commit went through.
    ASSIGN_OR_RETURN(bool exists, BlobExists(blob));
    if (exists) return core::OkStatus();
  }
  if (err.reason() == "DIGEST_MISMATCH") {
    ForgetSession(blob);
    return core::DataLoss("upload of " + blob.path + " did not match its digest " + digest +
                              " (was the file changed during the push?): " + err.message(),
                          "DIGEST_MISMATCH");
  }
  return err.Annotate("commit " + digest);
}

core::Result<core::Digest> HashOne(const LocalFile& f, std::vector<char>& buf,
                                   const std::function<void(uint64_t)>& on_bytes) {
  core::UniqueFd fd(::open(f.path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return core::ErrnoStatus(errno, "open " + f.path);
  core::Sha256 hash;
  uint64_t total = 0;
  while (true) {
    ssize_t n = ::read(fd.get(), buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return core::ErrnoStatus(errno, "read " + f.path);
    }
    if (n == 0) break;
    hash.Update(buf.data(), static_cast<size_t>(n));
    total += static_cast<uint64_t>(n);
    if (on_bytes) on_bytes(static_cast<uint64_t>(n));
  }
  if (total != f.size) {
    return core::FailedPrecondition(f.path + " changed size while being hashed");
  }
  return hash.Finish();
}

}  // namespace

std::string BuildConfig(const std::string& format, size_t files,
                        const std::map<std::string, std::string>& labels) {
  core::Json config = {{"format", format}, {"files", files}, {"labels", core::Json::object()}};
  for (const auto& [k, v] : labels) config["labels"][k] = v;
  return core::DumpJson(config);
}

registry::Manifest BuildManifest(const std::vector<HashedFile>& files,
                                 const std::string& config_bytes) {
  registry::Manifest m;
  m.artifact_type = std::string(registry::kModelArtifactType);
  m.config.media_type = std::string(registry::kModelConfigMediaType);
  m.config.digest = core::Sha256::Of(config_bytes);
  m.config.size = config_bytes.size();
  for (const HashedFile& f : files) {
    registry::Descriptor d;
    d.media_type = std::string(registry::kLayerMediaType);
    d.digest = f.digest;
    d.size = f.file.size;
    d.annotations[std::string(registry::kTitleAnnotation)] = f.file.title;
    m.layers.push_back(std::move(d));
  }
  return m;
}

core::Result<std::vector<HashedFile>> HashFiles(const std::vector<LocalFile>& files, int jobs,
                                                const std::function<void(uint64_t)>& on_bytes) {
  std::vector<HashedFile> out(files.size());
  int threads = std::max(1, jobs);
  std::vector<std::vector<char>> buffers(threads);
  std::atomic<bool> failed{false};
  Status s = ParallelFor(files.size(), threads, &failed, [&](size_t i, int worker) -> Status {
    auto& buf = buffers[worker];
    if (buf.empty()) buf.resize(1 << 20);
    ASSIGN_OR_RETURN(core::Digest d, HashOne(files[i], buf, on_bytes));
    out[i] = HashedFile{files[i], d};
    return core::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

Status ParseLabel(std::string_view text, std::map<std::string, std::string>* labels) {
  size_t eq = text.find('=');
  if (eq == std::string_view::npos) {
    return core::InvalidArgument("label '" + std::string(text) + "' must be KEY=VALUE",
                                 "LABEL_INVALID");
  }
  std::string key(text.substr(0, eq));
  std::string value(text.substr(eq + 1));
  RETURN_IF_ERROR(registry::ValidateLabel(key, value));
  (*labels)[key] = value;
  return core::OkStatus();
}

core::Result<PushResult> Push(const std::string& path, const Reference& ref,
                              const PushOptions& options) {
  if (ref.tag.empty()) return core::InvalidArgument("push needs REPO:VERSION, not a digest");
  ASSIGN_OR_RETURN(std::vector<LocalFile> files, ListModelFiles(path));
  ASSIGN_OR_RETURN(std::string format, GuessModelFormat(files));

  uint64_t file_bytes = 0;
  for (const LocalFile& f : files) file_bytes += f.size;
  std::vector<HashedFile> hashed;
  {
    Progress hashing("hashing  ", file_bytes, options.progress);
    hashing.Start();
    ASSIGN_OR_RETURN(hashed, HashFiles(files, options.jobs,
                                       [&](uint64_t n) { hashing.Add(n); }));
    hashing.Finish();
  }

  const std::string config = BuildConfig(format, files.size(), options.labels);
  registry::Manifest manifest = BuildManifest(hashed, config);
  const std::string manifest_bytes = registry::SerializeManifest(manifest);
  const core::Digest manifest_digest = core::Sha256::Of(manifest_bytes);

  // Distinct blobs, largest first so the big ones start early.
  std::vector<Blob> blobs;
  std::map<core::Digest, size_t> seen;
  Blob config_blob{manifest.config.digest, config.size(), "", config, true};
  blobs.push_back(config_blob);
  seen[config_blob.digest] = 0;
  for (const HashedFile& f : hashed) {
    if (seen.count(f.digest) != 0) continue;
    seen[f.digest] = blobs.size();
    blobs.push_back(Blob{f.digest, f.file.size, f.file.path, "", false});
  }
  std::stable_sort(blobs.begin(), blobs.end(),
                   [](const Blob& a, const Blob& b) { return a.size > b.size; });

  PushResult result;
  result.repository = ref.repository;
  result.version = ref.tag;
  result.files = files.size();
  result.blobs = blobs.size();
  for (const Blob& b : blobs) result.bytes_total += b.size;

  std::unique_ptr<UploadState> state;
  if (!options.state_dir.empty()) state = std::make_unique<UploadState>(options.state_dir);
  Counters counters;
  std::atomic<bool> failed{false};
  Progress progress("uploading", result.bytes_total, options.progress);
  progress.Start();
  int threads = std::max(1, options.jobs);
  std::vector<std::unique_ptr<Uploader>> uploaders;
  for (int i = 0; i < threads; ++i) {
    uploaders.push_back(
        std::make_unique<Uploader>(options, state.get(), &counters, &progress, &failed));
  }
  RETURN_IF_ERROR(ParallelFor(blobs.size(), threads, &failed, [&](size_t i, int worker) {
    return uploaders[worker]->Upload(blobs[i]);
  }));

  progress.Finish();

  // The version itself. A blob reported missing (collected between our HEAD
  // and now) is sent again, once.
  HttpClient http(options.server);
  const std::string version_path = "/api/v1/models/" + ref.repository + "/versions/" + ref.tag;
  HttpRequest put{.method = "PUT",
                  .path = version_path,
                  .headers = {"Content-Type: " + std::string(registry::kOciManifestMediaType)},
                  .body = manifest_bytes};
  ASSIGN_OR_RETURN(HttpResponse r, PerformWithRetry(http, put, options.retry_budget));
  if (!r.ok()) {
    Status err = ErrorFromResponse(r);
    if (err.reason() != "BLOB_UNKNOWN" || err.detail().empty()) return err;
    ASSIGN_OR_RETURN(core::Json detail, core::ParseJson(err.detail()));
    if (!detail.contains("missing") || !detail["missing"].is_array()) return err;
    for (const core::Json& m : detail["missing"]) {
      if (!m.is_string()) return err;
      auto d = core::Digest::Parse(m.get<std::string>());
      if (!d.ok() || seen.count(*d) == 0) return err;
      const Blob* blob = nullptr;
      for (const Blob& b : blobs) {
        if (b.digest == *d) blob = &b;
      }
      RETURN_IF_ERROR(uploaders[0]->Send(*blob));
    }
    ASSIGN_OR_RETURN(r, PerformWithRetry(http, put, options.retry_budget));
    if (!r.ok()) return ErrorFromResponse(r);
  }
  std::string digest = r.Header("docker-content-digest");
  if (digest.empty()) {
    auto j = core::ParseJson(r.body);
    if (j.ok()) {
      auto d = core::GetString(*j, "digest");
      if (d.ok()) digest = *d;
    }
  }
  if (digest != manifest_digest.ToString()) {
    return core::DataLoss("server stored the manifest as '" + digest + "', expected " +
                          manifest_digest.ToString());
  }
  result.digest = digest;

  if (!options.labels.empty()) {
    core::Json body = {{"labels", options.labels}};
    std::string text = core::DumpJson(body);
    HttpRequest labels{.method = "PUT",
                       .path = version_path + "/labels",
                       .headers = {"Content-Type: application/json"},
                       .body = text};
    ASSIGN_OR_RETURN(HttpResponse lr, PerformWithRetry(http, labels, options.retry_budget));
    if (!lr.ok()) return ErrorFromResponse(lr).Annotate("set labels");
  }

  result.bytes_uploaded = counters.bytes_uploaded;
  result.bytes_skipped = counters.bytes_skipped;
  result.bytes_resumed = counters.bytes_resumed;
  result.blobs_uploaded = counters.blobs_uploaded;
  result.blobs_skipped = counters.blobs_skipped;
  result.blobs_resumed = counters.blobs_resumed;
  return result;
}

}  // namespace sigil::cli
