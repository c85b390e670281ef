#include "attest/checkpoint.h"

#include <cstring>

#include "core/digest.h"
#include "signing/base64.h"

namespace sigil::attest {

using core::Result;
using core::Status;

namespace {

constexpr std::string_view kSigPrefix = "\xE2\x80\x94 ";  // em dash, space
constexpr size_t kMaxNoteBytes = 1 << 20;
constexpr size_t kMaxSignatureLines = 100;

Status Invalid(std::string message) {
  return core::InvalidArgument("checkpoint: " + std::move(message), "CHECKPOINT_INVALID");
}

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (char c : name) {
    if (c == ' ' || c == '+' || c == '\n' || static_cast<unsigned char>(c) < 0x21) return false;
  }
  return true;
}

std::vector<std::string_view> SplitLines(std::string_view text) {
  // REQUIRES: text ends with '\n'. Returns the lines without newlines.
  std::vector<std::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

Result<uint64_t> ParseSize(std::string_view s) {
  if (s.empty() || s.size() > 20 || (s.size() > 1 && s[0] == '0')) return Invalid("bad tree size");
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return Invalid("bad tree size");
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return Invalid("tree size overflows");
    v = v * 10 + d;
  }
  return v;
}

}  // namespace

Result<std::string> CheckpointBody(const Checkpoint& cp) {
  if (cp.origin.empty() || cp.origin.find('\n') != std::string::npos) {
    return core::InvalidArgument("checkpoint origin must be one non-empty line");
  }
  std::string body = cp.origin + "\n" + std::to_string(cp.size) + "\n" +
                     signing::Base64Encode(HashBytes(cp.root)) + "\n";
  for (const std::string& ext : cp.extensions) {
    if (ext.empty() || ext.find('\n') != std::string::npos) {
      return core::InvalidArgument("checkpoint extension lines must be non-empty single lines");
    }
    body += ext + "\n";
  }
  return body;
}

Result<Checkpoint> ParseCheckpointBody(std::string_view body) {
  if (body.empty() || body.back() != '\n') return Invalid("body must end with a newline");
  std::vector<std::string_view> lines = SplitLines(body);
  if (lines.size() < 3) return Invalid("body needs origin, size and root lines");
  Checkpoint cp;
  if (lines[0].empty()) return Invalid("empty origin");
  cp.origin = std::string(lines[0]);
  ASSIGN_OR_RETURN(cp.size, ParseSize(lines[1]));
  auto root = signing::Base64Decode(lines[2]);
  if (!root.ok() || root->size() != 32 || signing::Base64Encode(*root) != lines[2]) {
    return Invalid("root must be 32 bytes in standard base64");
  }
  std::memcpy(cp.root.data(), root->data(), 32);
  for (size_t i = 3; i < lines.size(); ++i) {
    if (lines[i].empty()) return Invalid("empty extension line");
    cp.extensions.emplace_back(lines[i]);
  }
  return cp;
}

std::array<uint8_t, 4> NoteKeyId(std::string_view name, const signing::PublicKey& key) {
  core::Sha256 h;
  h.Update(name);
  const uint8_t sep[2] = {0x0A, 0x01};  // newline, then the Ed25519 signature type
  h.Update(sep, 2);
  h.Update(key.raw());
  core::Digest d = h.Finish();
  return {d.bytes()[0], d.bytes()[1], d.bytes()[2], d.bytes()[3]};
}

Result<std::string> NoteVerifierKey(std::string_view name, const signing::PublicKey& key) {
  if (key.algorithm() != signing::Algorithm::kEd25519) {
    return core::InvalidArgument("note keys must be Ed25519", "NOTE_KEY_INVALID");
  }
  if (!ValidName(name)) return core::InvalidArgument("bad note key name", "NOTE_KEY_INVALID");
  auto id = NoteKeyId(name, key);
  return std::string(name) + "+" + core::HexEncode(id.data(), id.size()) + "+" +
         signing::Base64Encode(std::string(1, '\x01') + key.raw());
}

Result<NoteVerifier> ParseNoteVerifierKey(std::string_view text) {
  auto bad = [](std::string why) {
    return core::InvalidArgument("note verifier key: " + std::move(why), "NOTE_KEY_INVALID");
  };
  size_t p1 = text.find('+');
  size_t p2 = p1 == std::string_view::npos ? p1 : text.find('+', p1 + 1);
  if (p2 == std::string_view::npos) return bad("expected name+keyid+key");
  std::string_view name = text.substr(0, p1);
  std::string_view hex = text.substr(p1 + 1, p2 - p1 - 1);
  if (!ValidName(name)) return bad("bad name");
  auto key_bytes = signing::Base64Decode(text.substr(p2 + 1));
  if (!key_bytes.ok() || key_bytes->size() != 33 || (*key_bytes)[0] != '\x01') {
    return bad("key must be base64 of 0x01 followed by 32 bytes");
  }
  auto key = signing::PublicKey::FromRawEd25519(std::string_view(*key_bytes).substr(1));
  if (!key.ok()) return bad(key.status().message());
  auto id = NoteKeyId(name, *key);
  if (hex != core::HexEncode(id.data(), id.size())) return bad("key id does not match the key");
  return NoteVerifier{std::string(name), *key};
}

Result<std::string> SignCheckpoint(const Checkpoint& checkpoint, std::string_view name,
                                   const signing::PrivateKey& key) {
  if (key.algorithm() != signing::Algorithm::kEd25519) {
    return core::InvalidArgument("checkpoints are signed with Ed25519 keys");
  }
  if (!ValidName(name)) return core::InvalidArgument("bad checkpoint signer name");
  ASSIGN_OR_RETURN(std::string body, CheckpointBody(checkpoint));
  ASSIGN_OR_RETURN(std::string sig, key.Sign(body));
  auto id = NoteKeyId(name, key.public_key());
  std::string blob(reinterpret_cast<const char*>(id.data()), id.size());
  blob += sig;
  return body + "\n" + std::string(kSigPrefix) + std::string(name) + " " +
         signing::Base64Encode(blob) + "\n";
}

Result<std::string> VerifyNote(std::string_view note, const std::vector<NoteVerifier>& verifiers) {
  auto bad = [](std::string why) {
    return core::InvalidArgument("signed note: " + std::move(why), "NOTE_INVALID");
  };
  if (note.size() > kMaxNoteBytes) return bad("note too large");
  size_t split = note.rfind("\n\n");
  if (split == std::string_view::npos) return bad("no blank line before the signatures");
  std::string_view body = note.substr(0, split + 1);
  std::string_view sigs = note.substr(split + 2);
  if (sigs.empty() || sigs.back() != '\n') return bad("signature block must end with a newline");

  std::vector<std::string_view> lines = SplitLines(sigs);
  if (lines.size() > kMaxSignatureLines) return bad("too many signature lines");
  bool verified = false;
  for (std::string_view line : lines) {
    if (line.substr(0, kSigPrefix.size()) != kSigPrefix) return bad("malformed signature line");
    line.remove_prefix(kSigPrefix.size());
    size_t space = line.find(' ');
    if (space == std::string_view::npos) return bad("malformed signature line");
    std::string_view name = line.substr(0, space);
    auto blob = signing::Base64Decode(line.substr(space + 1));
    if (!blob.ok() || blob->size() < 5) return bad("malformed signature for " + std::string(name));
    for (const NoteVerifier& v : verifiers) {
      if (v.name != name) continue;
      auto id = NoteKeyId(v.name, v.key);
      if (std::memcmp(blob->data(), id.data(), 4) != 0) continue;
      Status s = v.key.Verify(body, std::string_view(*blob).substr(4));
      if (!s.ok()) {
        return core::Unauthenticated("note signature by " + v.name + " does not verify",
                                     "SIGNATURE_INVALID");
      }
      verified = true;
    }
  }
  if (!verified) {
    return core::Unauthenticated("note carries no signature by a known key", "CHECKPOINT_UNKNOWN_KEY");
  }
  return std::string(body);
}

Result<Checkpoint> VerifyCheckpoint(std::string_view note, std::string_view expected_origin,
                                    const std::vector<NoteVerifier>& verifiers) {
  ASSIGN_OR_RETURN(std::string body, VerifyNote(note, verifiers));
  ASSIGN_OR_RETURN(Checkpoint cp, ParseCheckpointBody(body));
  if (cp.origin != expected_origin) {
    return core::Unauthenticated("checkpoint is from origin '" + cp.origin + "', expected '" +
                                     std::string(expected_origin) + "'",
                                 "CHECKPOINT_ORIGIN");
  }
  return cp;
}

}  // namespace sigil::attest
