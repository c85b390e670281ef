#include "attest/git_mirror.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <memory>
#include <mutex>

#include <git2.h>

#include "core/digest.h"
#include "signing/base64.h"
#include "signing/keys.h"

namespace sigil::attest {
namespace {

using core::Result;
using core::Status;

constexpr size_t kMaxUriBytes = 2048;
constexpr size_t kMaxCommitBytes = 4 << 20;
constexpr size_t kMaxSignatureBytes = 64 << 10;

constexpr std::string_view kSshBegin = "-----BEGIN SSH SIGNATURE-----";
constexpr std::string_view kSshEnd = "-----END SSH SIGNATURE-----";
constexpr std::string_view kSshSigMagic = "SSHSIG";
constexpr std::string_view kEd25519 = "ssh-ed25519";
constexpr std::string_view kEcdsaP256 = "ecdsa-sha2-nistp256";

struct RepoFree {
  void operator()(git_repository* p) const { git_repository_free(p); }
};
struct OdbFree {
  void operator()(git_odb* p) const { git_odb_free(p); }
};
struct RefFree {
  void operator()(git_reference* p) const { git_reference_free(p); }
};
struct ObjectFree {
  void operator()(git_object* p) const { git_object_free(p); }
};
struct BranchIterFree {
  void operator()(git_branch_iterator* p) const { git_branch_iterator_free(p); }
};
struct Buf {
  git_buf buf = GIT_BUF_INIT;
  ~Buf() { git_buf_dispose(&buf); }
  std::string_view view() const { return std::string_view(buf.ptr ? buf.ptr : "", buf.size); }
};
using RepoPtr = std::unique_ptr<git_repository, RepoFree>;
using OdbPtr = std::unique_ptr<git_odb, OdbFree>;
using RefPtr = std::unique_ptr<git_reference, RefFree>;
using ObjectPtr = std::unique_ptr<git_object, ObjectFree>;
using BranchIterPtr = std::unique_ptr<git_branch_iterator, BranchIterFree>;

void EnsureLibgit2() {
  static std::once_flag once;
  std::call_once(once, [] {
    git_libgit2_init();
    // The answer must depend on the mirror alone, not on whichever
    // ~/.gitconfig or /etc/gitconfig the server's account happens to have.
    for (int level : {GIT_CONFIG_LEVEL_PROGRAMDATA, GIT_CONFIG_LEVEL_SYSTEM, GIT_CONFIG_LEVEL_XDG,
                      GIT_CONFIG_LEVEL_GLOBAL}) {
      git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, level, "");
    }
    // Mirrors are commonly refreshed by another account than the server's.
    // Owner validation guards git's config-driven programs and hooks; we only
    // read objects and refs, and run nothing.
    git_libgit2_opts(GIT_OPT_SET_OWNER_VALIDATION, 0);
  });
}

Status GitError(std::string_view context) {
  const git_error* e = git_error_last();
  std::string message = std::string(context) + ": " +
                        (e != nullptr && e->message != nullptr ? e->message : "libgit2 error");
  git_error_clear();
  return core::FailedPrecondition(std::move(message), "MIRROR_UNREADABLE");
}

Status UriInvalid(std::string_view uri, std::string_view why) {
  std::string shown(uri.substr(0, 200));
  for (char& c : shown) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = '?';
  }
  return core::InvalidArgument("source URI '" + shown + "' " + std::string(why),
                               "SOURCE_URI_INVALID");
}

bool IsHostChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
}

// A short, printable rendering of bytes that came from a signature.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  if (s.size() > 64) out += "...";
  return out;
}

// SSH wire format (RFC 4251 section 5): uint32 big-endian and
// length-prefixed strings, every length checked against what is left.
class WireReader {
 public:
  explicit WireReader(std::string_view data) : data_(data) {}

  bool U32(uint32_t& out) {
    if (data_.size() < 4) return false;
    out = (uint32_t{static_cast<uint8_t>(data_[0])} << 24) |
          (uint32_t{static_cast<uint8_t>(data_[1])} << 16) |
          (uint32_t{static_cast<uint8_t>(data_[2])} << 8) | uint32_t{static_cast<uint8_t>(data_[3])};
    data_.remove_prefix(4);
    return true;
  }
  bool String(std::string_view& out) {
    uint32_t len = 0;
    if (!U32(len) || len > data_.size()) return false;
    out = data_.substr(0, len);
    data_.remove_prefix(len);
    return true;
  }
  bool Bytes(size_t n, std::string_view& out) {
    if (n > data_.size()) return false;
    out = data_.substr(0, n);
    data_.remove_prefix(n);
    return true;
  }
  bool empty() const { return data_.empty(); }

 private:
  std::string_view data_;
};

void PutString(std::string& out, std::string_view s) {
  uint32_t n = static_cast<uint32_t>(s.size());
  out += static_cast<char>(n >> 24);
  out += static_cast<char>(n >> 16);
  out += static_cast<char>(n >> 8);
  out += static_cast<char>(n);
  out += s;
}

Status SigInvalid(std::string message) {
  return core::Unauthenticated(std::move(message), "SIGNATURE_INVALID");
}

// An SSH mpint holding a positive scalar, left-padded to `size` bytes.
Result<std::string> ScalarFromMpint(std::string_view mpint, size_t size) {
  if (!mpint.empty() && (static_cast<uint8_t>(mpint[0]) & 0x80) != 0) {
    return SigInvalid("ECDSA signature holds a negative integer");
  }
  while (!mpint.empty() && mpint[0] == '\0') mpint.remove_prefix(1);
  if (mpint.empty() || mpint.size() > size) {
    return SigInvalid("ECDSA signature integer is out of range");
  }
  return std::string(size - mpint.size(), '\0') + std::string(mpint);
}

// The SSHSIG blob of an armored signature.
Result<std::string> Dearmor(std::string_view armored) {
  while (!armored.empty() && std::isspace(static_cast<unsigned char>(armored.back()))) {
    armored.remove_suffix(1);
  }
  if (armored.starts_with("-----BEGIN PGP SIGNATURE-----")) {
    return SigInvalid("an OpenPGP signature; only SSH signatures are verified");
  }
  if (armored.starts_with("-----BEGIN SIGNED MESSAGE-----")) {
    return SigInvalid("an X.509 signature; only SSH signatures are verified");
  }
  if (!armored.starts_with(kSshBegin)) return SigInvalid("not a recognized signature format");
  if (!armored.ends_with(kSshEnd) || armored.size() < kSshBegin.size() + kSshEnd.size()) {
    return SigInvalid("SSH signature armor has no END line");
  }
  std::string_view body =
      armored.substr(kSshBegin.size(), armored.size() - kSshBegin.size() - kSshEnd.size());
  std::string b64;
  for (char c : body) {
    if (c == '\n' || c == '\r' || c == ' ' || c == '\t') continue;
    b64 += c;
  }
  auto blob = signing::Base64Decode(b64);
  if (!blob.ok()) return SigInvalid("SSH signature is not valid base64");
  return std::move(blob).value();
}

// Verifies an armored SSHSIG over `signed_data` for namespace "git" (the
// format of OpenSSH's PROTOCOL.sshsig). Returns "<type> <base64 key blob>".
Result<std::string> VerifySshSignature(std::string_view armored, std::string_view signed_data) {
  ASSIGN_OR_RETURN(std::string blob, Dearmor(armored));
  WireReader r(blob);
  std::string_view magic, public_key, name_space, reserved, hash_algorithm, signature;
  uint32_t version = 0;
  if (!r.Bytes(kSshSigMagic.size(), magic) || magic != kSshSigMagic) {
    return SigInvalid("SSH signature does not start with SSHSIG");
  }
  if (!r.U32(version)) return SigInvalid("SSH signature is truncated");
  if (version != 1) return SigInvalid("SSH signature version " + std::to_string(version) + " is not 1");
  if (!r.String(public_key) || !r.String(name_space) || !r.String(reserved) ||
      !r.String(hash_algorithm) || !r.String(signature)) {
    return SigInvalid("SSH signature is truncated");
  }
  if (!r.empty()) return SigInvalid("SSH signature has trailing bytes");
  if (name_space != "git") {
    return SigInvalid("SSH signature is for namespace '" + Printable(name_space) + "', not 'git'");
  }
  std::string digest;
  if (hash_algorithm == "sha512") {
    digest = core::Sha512Raw(signed_data);
  } else if (hash_algorithm == "sha256") {
    const core::Digest d = core::Sha256::Of(signed_data);
    digest.assign(reinterpret_cast<const char*>(d.bytes().data()), d.bytes().size());
  } else {
    return SigInvalid("SSH signature hash algorithm '" + Printable(hash_algorithm) +
                      "' is not sha256 or sha512");
  }

  WireReader k(public_key);
  std::string_view key_type;
  if (!k.String(key_type)) return SigInvalid("SSH signature public key is truncated");
  std::string_view point;
  signing::Algorithm algorithm = signing::Algorithm::kEd25519;
  if (key_type == kEd25519) {
    algorithm = signing::Algorithm::kEd25519;
  } else if (key_type == kEcdsaP256) {
    algorithm = signing::Algorithm::kEcdsaP256Sha256;
    std::string_view curve;
    if (!k.String(curve)) return SigInvalid("SSH signature public key is truncated");
    if (curve != "nistp256") return SigInvalid("ECDSA key names curve '" + Printable(curve) + "'");
  } else {
    return SigInvalid("SSH key type '" + Printable(key_type) +
                      "' is not supported (ssh-ed25519, ecdsa-sha2-nistp256)");
  }
  if (!k.String(point) || !k.empty()) return SigInvalid("SSH signature public key is malformed");
  auto key = algorithm == signing::Algorithm::kEd25519
                 ? signing::PublicKey::FromRawEd25519(point)
                 : signing::PublicKey::FromEcPoint(algorithm, point);
  if (!key.ok()) return SigInvalid("SSH signature public key: " + key.status().message());

  WireReader s(signature);
  std::string_view sig_type, sig_blob;
  if (!s.String(sig_type) || !s.String(sig_blob) || !s.empty()) {
    return SigInvalid("SSH signature value is malformed");
  }
  if (sig_type != key_type) {
    return SigInvalid("SSH signature type '" + Printable(sig_type) + "' does not match key type " +
                      std::string(key_type));
  }
  std::string raw;
  if (algorithm == signing::Algorithm::kEd25519) {
    if (sig_blob.size() != 64) return SigInvalid("Ed25519 signature is not 64 bytes");
    raw = std::string(sig_blob);
  } else {
    WireReader e(sig_blob);
    std::string_view r_mpint, s_mpint;
    if (!e.String(r_mpint) || !e.String(s_mpint) || !e.empty()) {
      return SigInvalid("ECDSA signature value is malformed");
    }
    ASSIGN_OR_RETURN(std::string r_bytes, ScalarFromMpint(r_mpint, 32));
    ASSIGN_OR_RETURN(std::string s_bytes, ScalarFromMpint(s_mpint, 32));
    raw = r_bytes + s_bytes;
  }

  std::string message(kSshSigMagic);
  PutString(message, name_space);
  PutString(message, reserved);
  PutString(message, hash_algorithm);
  PutString(message, digest);
  if (!key->Verify(message, raw).ok()) {
    return SigInvalid("SSH signature does not verify over the commit");
  }
  return std::string(key_type) + " " + signing::Base64Encode(public_key);
}

RepoPtr OpenMirror(const std::string& path) {
  git_repository* repo = nullptr;
  // NO_SEARCH: a missing mirror must not fall back to a repository that
  // happens to enclose the mirror root.
  if (git_repository_open_ext(&repo, path.c_str(), GIT_REPOSITORY_OPEN_NO_SEARCH, nullptr) != 0) {
    git_error_clear();
    return nullptr;
  }
  return RepoPtr(repo);
}

Result<std::vector<std::string>> BranchesReaching(git_repository* repo, const git_oid& commit) {
  git_branch_iterator* raw_iter = nullptr;
  if (git_branch_iterator_new(&raw_iter, repo, GIT_BRANCH_LOCAL) != 0) {
    return GitError("listing branches");
  }
  BranchIterPtr iter(raw_iter);
  std::vector<std::string> out;
  while (true) {
    git_reference* raw_ref = nullptr;
    git_branch_t type;
    int rc = git_branch_next(&raw_ref, &type, iter.get());
    if (rc == GIT_ITEROVER) break;
    if (rc != 0) return GitError("listing branches");
    RefPtr ref(raw_ref);
    const char* name = nullptr;
    if (git_branch_name(&name, ref.get()) != 0 || name == nullptr) return GitError("naming a branch");
    git_object* raw_tip = nullptr;
    if (git_reference_peel(&raw_tip, ref.get(), GIT_OBJECT_COMMIT) != 0) {
      git_error_clear();  // a branch whose tip is no commit reaches nothing
      continue;
    }
    ObjectPtr tip(raw_tip);
    const git_oid* tip_id = git_object_id(tip.get());
    bool reaches = git_oid_equal(tip_id, &commit) != 0;
    if (!reaches) {
      int d = git_graph_descendant_of(repo, tip_id, &commit);
      if (d < 0) return GitError("walking branch " + std::string(name));
      reaches = d == 1;
    }
    if (reaches) out.emplace_back(name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

bool IsHex40(std::string_view s) {
  return s.size() == 40 && std::all_of(s.begin(), s.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

}  // namespace

core::Result<std::string> MirrorPathFor(std::string_view root, std::string_view source_uri) {
  if (root.empty()) return core::NotFound("no git mirror root is configured", "MIRROR_UNKNOWN");
  std::string_view uri = source_uri;
  if (uri.empty()) return UriInvalid(uri, "is empty");
  if (uri.size() > kMaxUriBytes) return UriInvalid(uri, "is longer than 2048 bytes");
  for (char c : uri) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      return UriInvalid(uri, "holds a control character");
    }
    if (c == '\\' || c == '%' || c == '?' || c == '#') {
      return UriInvalid(uri, std::string("may not hold '") + c + "'");
    }
  }
  std::string_view authority, path;
  size_t scheme_end = uri.find("://");
  if (scheme_end != std::string_view::npos) {
    std::string scheme(uri.substr(0, scheme_end));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    // SLSA and SPDX write git sources as git+https://...: the transport is what follows.
    if (scheme.rfind("git+", 0) == 0) scheme = scheme.substr(4);
    if (scheme == "file") return UriInvalid(uri, "names no host; mirrors are kept by host");
    if (scheme != "https" && scheme != "http" && scheme != "ssh" && scheme != "git") {
      return UriInvalid(uri, "has scheme '" + scheme + "' (https, http, ssh or git, each also as git+...)");
    }
    std::string_view rest = uri.substr(scheme_end + 3);
    size_t slash = rest.find('/');
    if (slash == std::string_view::npos) return UriInvalid(uri, "names no repository path");
    authority = rest.substr(0, slash);
    path = rest.substr(slash + 1);
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) authority.remove_prefix(at + 1);
    size_t colon = authority.find(':');
    if (colon != std::string_view::npos) {
      std::string_view port = authority.substr(colon + 1);
      if (port.empty() || port.size() > 5 ||
          !std::all_of(port.begin(), port.end(),
                       [](char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; })) {
        return UriInvalid(uri, "has an invalid port");
      }
      authority = authority.substr(0, colon);
    }
  } else {
    // scp-like "[user@]host:path": the ':' comes before any '/'.
    size_t colon = uri.find(':');
    size_t slash = uri.find('/');
    if (colon == std::string_view::npos || (slash != std::string_view::npos && slash < colon)) {
      return UriInvalid(uri, "is neither a URL nor [user@]host:path");
    }
    authority = uri.substr(0, colon);
    path = uri.substr(colon + 1);
    size_t at = authority.rfind('@');
    if (at != std::string_view::npos) authority.remove_prefix(at + 1);
  }
  if (authority.empty()) return UriInvalid(uri, "has an empty host");
  if (!std::all_of(authority.begin(), authority.end(), IsHostChar) || authority.front() == '.' ||
      authority.front() == '-') {
    return UriInvalid(uri, "has an invalid host");
  }
  std::string host(authority);
  std::transform(host.begin(), host.end(), host.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });

  // The path is always relative to the host's directory, whether the URI
  // wrote it absolute ("host:/srv/a") or not.
  while (path.starts_with('/')) path.remove_prefix(1);
  if (path.ends_with('/')) path.remove_suffix(1);
  std::vector<std::string> components;
  while (!path.empty()) {
    size_t slash = path.find('/');
    components.emplace_back(path.substr(0, slash));
    path = slash == std::string_view::npos ? std::string_view() : path.substr(slash + 1);
    if (slash != std::string_view::npos && path.empty()) components.emplace_back();
  }
  if (components.empty()) return UriInvalid(uri, "names no repository path");
  std::string& last = components.back();
  if (last.ends_with(".git")) last.resize(last.size() - 4);
  std::string out(root);
  while (out.size() > 1 && out.ends_with('/')) out.pop_back();
  if (!out.ends_with('/')) out += "/";
  out += host;
  for (const auto& c : components) {
    if (c.empty()) return UriInvalid(uri, "has an empty path component");
    if (c == "." || c == "..") return UriInvalid(uri, "has a '.' or '..' path component");
    out += "/" + c;
  }
  return out;
}

core::Result<CommitCheck> CheckCommit(std::string_view mirror_root, std::string_view source_uri,
                                      std::string_view commit) {
  if (!IsHex40(commit)) {
    return core::InvalidArgument("commit must be 40 hex digits", "COMMIT_INVALID");
  }
  ASSIGN_OR_RETURN(std::string path, MirrorPathFor(mirror_root, source_uri));
  EnsureLibgit2();
  RepoPtr repo = OpenMirror(path);
  if (!repo) repo = OpenMirror(path + ".git");
  if (!repo) {
    // The root is the operator's business; the part under it tells them
    // where the mirror was expected.
    size_t root_len = mirror_root.size();
    while (root_len > 1 && mirror_root[root_len - 1] == '/') --root_len;
    std::string relative = path.substr(std::min(path.size(), root_len + 1));
    return core::NotFound("no git mirror of " + std::string(source_uri) + " (expected at " +
                              relative + "(.git) under the mirror root)",
                          "MIRROR_UNKNOWN");
  }

  CommitCheck out;
  out.commit = std::string(commit);
  git_oid oid;
  if (git_oid_fromstrn(&oid, commit.data(), commit.size()) != 0) {
    git_error_clear();
    return core::InvalidArgument("commit must be 40 hex digits", "COMMIT_INVALID");
  }
  git_odb* raw_odb = nullptr;
  if (git_repository_odb(&raw_odb, repo.get()) != 0) return GitError("opening the object database");
  OdbPtr odb(raw_odb);
  size_t size = 0;
  git_object_t type = GIT_OBJECT_INVALID;
  int rc = git_odb_read_header(&size, &type, odb.get(), &oid);
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    return out;
  }
  if (rc != 0) return GitError("reading object " + out.commit);
  if (type != GIT_OBJECT_COMMIT) {
    out.detail = std::string("the object is a ") + git_object_type2string(type) + ", not a commit";
    return out;
  }
  out.exists = true;
  ASSIGN_OR_RETURN(out.reachable_from, BranchesReaching(repo.get(), oid));

  if (size > kMaxCommitBytes) {
    out.detail = "the commit object is " + std::to_string(size) +
                 " bytes, more than 4 MiB; its signature is not checked";
    return out;
  }
  Buf signature, signed_data;
  rc = git_commit_extract_signature(&signature.buf, &signed_data.buf, repo.get(), &oid, "gpgsig");
  if (rc == GIT_ENOTFOUND) {
    git_error_clear();
    out.detail = "the commit is not signed";
    return out;
  }
  if (rc != 0) return GitError("reading the signature of " + out.commit);
  out.signed_commit = true;
  if (signature.view().size() > kMaxSignatureBytes) {
    out.detail = "signature is larger than 64 KiB";
    return out;
  }
  auto signer = VerifySshSignature(signature.view(), signed_data.view());
  if (!signer.ok()) {
    out.detail = signer.status().message();
    return out;
  }
  out.signature_valid = true;
  out.signer_key = std::move(signer).value();
  return out;
}

}  // namespace sigil::attest
