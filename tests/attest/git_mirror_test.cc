#include "attest/git_mirror.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <atomic>
#include <cstdint>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "signing/base64.h"
#include "tests/support/temp_dir.h"

namespace sigil::attest {
namespace {

using core::Code;

// Runs a program with exactly `env` (no inherited git or ssh settings) and
// returns its stdout; throws with its stderr when it fails.
std::string Run(const std::vector<std::string>& args, const std::vector<std::string>& env) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<char*> envp;
    for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);
    ::execve(args[0].c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  // stderr is small for these programs; read stdout to the end, then stderr.
  auto drain = [](int fd) {
    std::string s;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
    ::close(fd);
    return s;
  };
  std::string out = drain(out_pipe[0]);
  std::string err = drain(err_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const auto& a : args) cmd += a + " ";
    throw std::runtime_error("command failed: " + cmd + "\n" + err);
  }
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

// "ssh-ed25519 AAAA... comment" -> "ssh-ed25519 AAAA..."
std::string KeyWithoutComment(const std::string& pub) {
  size_t first = pub.find(' ');
  size_t second = pub.find(' ', first + 1);
  return Trim(pub.substr(0, second));
}

constexpr char kSource[] = "https://git.example.org/health/train.git";
constexpr char kBareSource[] = "git@git.example.org:health/train-mirror.git";

// One set of real repositories per test process, built with git and
// ssh-keygen:
//   main:    c1 (unsigned) - c2 (signed, Ed25519) - c3 (signed, ECDSA P-256)
//   feature: c3 - c4 (unsigned, only on feature)
// plus, in the non-bare mirror only, commit objects no branch reaches:
// c2 with its message altered, and c4's content with signatures spliced in.
struct Repos {
  testing::TempDir tmp;
  std::string root;
  std::string work;
  std::string ed_key, ec_key, p384_key;
  std::string ed_pub, ec_pub;  // "<type> <base64>", no comment
  std::string c1, c2, c3, c4, tampered, blob;
  std::string base_content;    // c4's commit object, unsigned
  std::string good_git_sig;    // ssh-keygen -Y sign -n git over base_content (Ed25519)

  std::vector<std::string> Env() const {
    return {"PATH=/usr/bin:/bin",
            "HOME=" + tmp.Sub("home"),
            "GIT_CONFIG_NOSYSTEM=1",
            "GIT_AUTHOR_NAME=Trainer",
            "GIT_AUTHOR_EMAIL=trainer@example.org",
            "GIT_AUTHOR_DATE=2026-01-02T03:04:05Z",
            "GIT_COMMITTER_NAME=Trainer",
            "GIT_COMMITTER_EMAIL=trainer@example.org",
            "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
            "LC_ALL=C",
            "TZ=UTC"};
  }
  std::string Git(std::vector<std::string> args) const {
    args.insert(args.begin(), {"/usr/bin/git", "-C", work});
    return Trim(Run(args, Env()));
  }
  std::string Commit(const std::string& message, const std::string& key = {}) const {
    if (key.empty()) {
      Git({"commit", "-q", "--allow-empty", "-m", message});
    } else {
      Git({"-c", "gpg.format=ssh", "-c", "user.signingkey=" + key, "commit", "-q", "-S",
           "--allow-empty", "-m", message});
    }
    return Git({"rev-parse", "HEAD"});
  }
  std::string KeyGen(const std::string& name, const std::vector<std::string>& type) const {
    std::string path = tmp.Sub("keys/" + name);
    std::vector<std::string> args = {"/usr/bin/ssh-keygen", "-q", "-N", "", "-C", name + "@example.org",
                                     "-f", path};
    args.insert(args.end(), type.begin(), type.end());
    Run(args, Env());
    return path;
  }
  // An armored SSH signature over data.
  std::string Sign(const std::string& key, const std::string& name_space, const std::string& data,
                   const std::vector<std::string>& options = {}) const {
    std::string file = tmp.Sub("keys/data");
    WriteFile(file, data);
    ::unlink((file + ".sig").c_str());
    std::vector<std::string> args = {"/usr/bin/ssh-keygen", "-Y", "sign", "-f", key, "-n", name_space};
    args.insert(args.end(), options.begin(), options.end());
    args.push_back(file);
    Run(args, Env());
    return ReadFile(file + ".sig");
  }
  // Writes base_content with `signature` as its gpgsig header; returns the id.
  std::string Splice(const std::string& signature) const {
    std::string text = base_content;
    size_t end_of_headers = text.find("\n\n");
    std::string header = "gpgsig";
    std::string sig = Trim(signature);
    size_t start = 0;
    while (start <= sig.size()) {
      size_t nl = sig.find('\n', start);
      std::string line = sig.substr(start, nl == std::string::npos ? std::string::npos : nl - start);
      header += " " + line + "\n";
      if (nl == std::string::npos) break;
      start = nl + 1;
    }
    text.insert(end_of_headers + 1, header);
    std::string file = tmp.Sub("spliced");
    WriteFile(file, text);
    return Git({"hash-object", "-t", "commit", "-w", "--literally", file});
  }

  Repos() {
    root = tmp.Sub("mirrors");
    work = root + "/git.example.org/health/train";
    ::mkdir(tmp.Sub("home").c_str(), 0700);
    ::mkdir(tmp.Sub("keys").c_str(), 0700);
    ::mkdir(root.c_str(), 0755);
    ::mkdir((root + "/git.example.org").c_str(), 0755);
    ::mkdir((root + "/git.example.org/health").c_str(), 0755);
    ed_key = KeyGen("ed", {"-t", "ed25519"});
    ec_key = KeyGen("ec", {"-t", "ecdsa", "-b", "256"});
    p384_key = KeyGen("p384", {"-t", "ecdsa", "-b", "384"});
    ed_pub = KeyWithoutComment(ReadFile(ed_key + ".pub"));
    ec_pub = KeyWithoutComment(ReadFile(ec_key + ".pub"));

    Run({"/usr/bin/git", "init", "-q", "-b", "main", work}, Env());
    WriteFile(work + "/train.py", "print('train')\n");
    Git({"add", "train.py"});
    c1 = Commit("initial");
    c2 = Commit("signed with ed25519", ed_key);
    c3 = Commit("signed with ecdsa", ec_key);
    Git({"checkout", "-q", "-b", "feature"});
    c4 = Commit("feature work");
    Git({"checkout", "-q", "main"});
    Run({"/usr/bin/git", "clone", "-q", "--mirror", "--no-local", work,
         root + "/git.example.org/health/train-mirror.git"},
        Env());

    blob = Git({"hash-object", "-w", "train.py"});
    std::string c2_text = Git({"cat-file", "commit", c2}) + "\n";
    size_t at = c2_text.find("signed with ed25519");
    std::string altered = c2_text;
    altered.replace(at, 19, "signed with ed25518");
    WriteFile(tmp.Sub("altered"), altered);
    tampered = Git({"hash-object", "-t", "commit", "-w", tmp.Sub("altered")});
    base_content = Git({"cat-file", "commit", c4}) + "\n";
    good_git_sig = Sign(ed_key, "git", base_content);
  }
};

const Repos& Fixture() {
  static const auto* repos = new Repos();
  return *repos;
}

CommitCheck Check(const std::string& source, const std::string& commit) {
  auto r = CheckCommit(Fixture().root, source, commit);
  REQUIRE(r.ok());
  CHECK(r->commit == commit);
  return *r;
}

// SSH wire helpers to build malformed signatures.
std::string U32(uint32_t n) {
  return {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
          static_cast<char>(n)};
}
std::string Str(const std::string& s) { return U32(static_cast<uint32_t>(s.size())) + s; }

std::string Armor(const std::string& blob) {
  std::string b64 = signing::Base64Encode(blob);
  std::string out = "-----BEGIN SSH SIGNATURE-----\n";
  for (size_t i = 0; i < b64.size(); i += 70) out += b64.substr(i, 70) + "\n";
  return out + "-----END SSH SIGNATURE-----\n";
}

// The fields of a valid SSHSIG blob.
struct SshSig {
  std::string public_key, name_space, reserved, hash_algorithm, signature;
  std::string Blob(uint32_t version = 1) const {
    return "SSHSIG" + U32(version) + Str(public_key) + Str(name_space) + Str(reserved) +
           Str(hash_algorithm) + Str(signature);
  }
};

SshSig ParseSshSig(const std::string& armored) {
  std::string body;
  std::istringstream in(armored);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("-----", 0) != 0) body += line;
  }
  std::string blob = signing::Base64Decode(body).value();
  size_t pos = 10;
  auto next = [&] {
    uint32_t n = (uint32_t{static_cast<uint8_t>(blob[pos])} << 24) |
                 (uint32_t{static_cast<uint8_t>(blob[pos + 1])} << 16) |
                 (uint32_t{static_cast<uint8_t>(blob[pos + 2])} << 8) |
                 uint32_t{static_cast<uint8_t>(blob[pos + 3])};
    std::string s = blob.substr(pos + 4, n);
    pos += 4 + n;
    return s;
  };
  SshSig sig;
  sig.public_key = next();
  sig.name_space = next();
  sig.reserved = next();
  sig.hash_algorithm = next();
  sig.signature = next();
  REQUIRE(pos == blob.size());
  return sig;
}

TEST_CASE("MirrorPathFor maps https, ssh and scp-like URIs to one directory", "[attest][git]") {
  const std::string want = "/m/git.example.org/health/train";
  for (const char* uri : {"https://git.example.org/health/train.git",
                          "https://git.example.org/health/train",
                          "git@git.example.org:health/train.git",
                          "git.example.org:/health/train.git",
                          "ssh://git@git.example.org:22/health/train",
                          "https://user:secret@Git.Example.ORG:8443/health/train/",
                          "git://git.example.org/health/train.git",
                          "git+https://git.example.org/health/train.git",
                          "git+ssh://git@git.example.org/health/train"}) {
    INFO(uri);
    auto p = MirrorPathFor("/m", uri);
    REQUIRE(p.ok());
    CHECK(*p == want);
  }
  CHECK(MirrorPathFor("/m/", "https://h.example/a/b/c.git").value() == "/m/h.example/a/b/c");
  CHECK(MirrorPathFor("/", "https://h.example/a").value() == "/h.example/a");
  CHECK(MirrorPathFor("mirrors", "https://h.example/a").value() == "mirrors/h.example/a");
  CHECK(MirrorPathFor("/m", "https://h.example/a.git/b").value() == "/m/h.example/a.git/b");
}

TEST_CASE("MirrorPathFor refuses URIs that could leave the mirror root", "[attest][git]") {
  const std::vector<std::string> bad = {
      "",
      "file:///srv/git/train.git",
      "ftp://git.example.org/health/train",
      "https://git.example.org/../etc",
      "https://git.example.org/health/../../etc",
      "https://git.example.org/health/./train",
      "https://git.example.org/health/..git",
      "https://git.example.org/health/.git",
      "https://git.example.org/a//b",
      "https:///health/train",
      "https://user@/health/train",
      "git@:health/train",
      ":health/train",
      "https://git.example.org/",
      "https://git.example.org",
      "git.example.org:",
      "/srv/git/train.git",
      "./train",
      "https://[::1]/health/train",
      "https://git.example.org:x/health/train",
      "https://git.example.org:/health/train",
      "https://..//health/train",
      "https://-h/health/train",
      "https://git.example.org/health/train?x=1",
      "https://git.example.org/health/train#main",
      "https://git.example.org/health/%2e%2e/x",
      "https://git.example.org/health\\..\\x",
      std::string("https://git.example.org/health/tr\0ain", 37),
      "https://git.example.org/health/tr\nain",
      "https://git.example.org/" + std::string(3000, 'a'),
  };
  for (const auto& uri : bad) {
    INFO(uri);
    auto p = MirrorPathFor("/m", uri);
    REQUIRE_FALSE(p.ok());
    CHECK(p.status().code() == Code::kInvalidArgument);
    CHECK(p.status().reason() == "SOURCE_URI_INVALID");
  }
  auto no_root = MirrorPathFor("", kSource);
  REQUIRE_FALSE(no_root.ok());
  CHECK(no_root.status().code() == Code::kNotFound);
  CHECK(no_root.status().reason() == "MIRROR_UNKNOWN");
}

TEST_CASE("CheckCommit finds commits and the branches that reach them", "[attest][git]") {
  const Repos& f = Fixture();
  for (const char* source : {kSource, kBareSource}) {
    INFO(source);
    auto c1 = Check(source, f.c1);
    CHECK(c1.exists);
    CHECK(c1.reachable_from == std::vector<std::string>{"feature", "main"});
    CHECK_FALSE(c1.signed_commit);
    CHECK_FALSE(c1.signature_valid);
    CHECK(c1.signer_key.empty());

    auto c3 = Check(source, f.c3);
    CHECK(c3.reachable_from == std::vector<std::string>{"feature", "main"});

    auto c4 = Check(source, f.c4);
    CHECK(c4.exists);
    CHECK(c4.reachable_from == std::vector<std::string>{"feature"});

    auto missing = Check(source, "0123456789abcdef0123456789abcdef01234567");
    CHECK_FALSE(missing.exists);
    CHECK(missing.reachable_from.empty());
    CHECK(missing.detail.empty());
  }
  // Upper-case hex names the same commit.
  std::string upper = f.c1;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  CHECK(Check(kSource, upper).exists);

  auto tampered = Check(kSource, f.tampered);
  CHECK(tampered.exists);
  CHECK(tampered.reachable_from.empty());
}

TEST_CASE("CheckCommit: an object that is not a commit does not exist as one", "[attest][git]") {
  auto blob = Check(kSource, Fixture().blob);
  CHECK_FALSE(blob.exists);
  CHECK(blob.reachable_from.empty());
  CHECK(blob.detail == "the object is a blob, not a commit");
}

TEST_CASE("CheckCommit verifies SSH commit signatures made by git", "[attest][git]") {
  const Repos& f = Fixture();
  for (const char* source : {kSource, kBareSource}) {
    INFO(source);
    auto ed = Check(source, f.c2);
    CHECK(ed.signed_commit);
    CHECK(ed.signature_valid);
    CHECK(ed.signer_key == f.ed_pub);
    CHECK(ed.reachable_from == std::vector<std::string>{"feature", "main"});

    auto ec = Check(source, f.c3);
    CHECK(ec.signed_commit);
    CHECK(ec.signature_valid);
    CHECK(ec.signer_key == f.ec_pub);
    CHECK(ec.signer_key.rfind("ecdsa-sha2-nistp256 ", 0) == 0);
  }
}

TEST_CASE("CheckCommit: an altered signed commit does not verify", "[attest][git]") {
  auto c = Check(kSource, Fixture().tampered);
  CHECK(c.signed_commit);
  CHECK_FALSE(c.signature_valid);
  CHECK(c.signer_key.empty());
  CHECK(c.detail.find("does not verify") != std::string::npos);
}

TEST_CASE("CheckCommit: spliced signatures by namespace, hash and key type", "[attest][git]") {
  const Repos& f = Fixture();
  // The same splice with a signature in namespace "git" verifies: the
  // failures below come from what differs, not from the splicing.
  auto good = Check(kSource, f.Splice(f.good_git_sig));
  CHECK(good.signature_valid);
  CHECK(good.signer_key == f.ed_pub);

  auto sha256 = Check(kSource, f.Splice(f.Sign(f.ec_key, "git", f.base_content, {"-O", "hashalg=sha256"})));
  CHECK(ParseSshSig(f.Sign(f.ec_key, "git", f.base_content, {"-O", "hashalg=sha256"})).hash_algorithm ==
        "sha256");
  CHECK(sha256.signature_valid);
  CHECK(sha256.signer_key == f.ec_pub);

  auto other_ns = Check(kSource, f.Splice(f.Sign(f.ed_key, "file", f.base_content)));
  CHECK(other_ns.signed_commit);
  CHECK_FALSE(other_ns.signature_valid);
  CHECK(other_ns.detail.find("namespace 'file'") != std::string::npos);

  auto p384 = Check(kSource, f.Splice(f.Sign(f.p384_key, "git", f.base_content)));
  CHECK(p384.signed_commit);
  CHECK_FALSE(p384.signature_valid);
  CHECK(p384.detail.find("ecdsa-sha2-nistp384") != std::string::npos);

  // A valid signature over other bytes.
  auto wrong_data = Check(kSource, f.Splice(f.Sign(f.ed_key, "git", f.base_content + "x")));
  CHECK_FALSE(wrong_data.signature_valid);
  CHECK(wrong_data.detail.find("does not verify") != std::string::npos);
}

TEST_CASE("CheckCommit: OpenPGP and X.509 signatures are signed but not verified", "[attest][git]") {
  const Repos& f = Fixture();
  auto gpg = Check(kSource, f.Splice("-----BEGIN PGP SIGNATURE-----\n\n"
                                     "iHUEABYKAB0WIQTz6T4Yb1l6Jz0pXr0a0m4Fq1n2bgUCZ0000AAKCRAa0m4Fq1n2\n"
                                     "=abcd\n-----END PGP SIGNATURE-----\n"));
  CHECK(gpg.exists);
  CHECK(gpg.signed_commit);
  CHECK_FALSE(gpg.signature_valid);
  CHECK(gpg.detail.find("OpenPGP") != std::string::npos);

  auto x509 = Check(kSource, f.Splice("-----BEGIN SIGNED MESSAGE-----\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\n"
                                      "-----END SIGNED MESSAGE-----\n"));
  CHECK(x509.signed_commit);
  CHECK_FALSE(x509.signature_valid);
  CHECK(x509.detail.find("X.509") != std::string::npos);
}

TEST_CASE("CheckCommit: malformed SSH signatures are invalid, with a reason", "[attest][git]") {
  const Repos& f = Fixture();
  const SshSig valid = ParseSshSig(f.good_git_sig);
  const std::string blob = valid.Blob();
  auto with = [&](auto change) {
    SshSig s = valid;
    change(s);
    return Armor(s.Blob());
  };
  std::string huge_length = blob;
  huge_length.replace(10, 4, U32(0xfffffff0));
  std::string bad_magic = blob;
  bad_magic[0] = 'X';
  std::string flipped = blob;
  flipped[blob.size() - 5] ^= 0x01;
  std::string ec_sig = ParseSshSig(f.Sign(f.ec_key, "git", f.base_content)).signature;

  struct Case {
    std::string name;
    std::string armored;
    std::string detail;
  };
  const std::vector<Case> cases = {
      {"truncated", Armor(blob.substr(0, blob.size() - 10)), "truncated"},
      {"only the magic", Armor("SSHSIG"), "truncated"},
      {"length beyond the end", Armor(huge_length), "truncated"},
      {"wrong magic", Armor(bad_magic), "SSHSIG"},
      {"version 2", Armor(valid.Blob(2)), "version 2"},
      {"trailing bytes", Armor(blob + "x"), "trailing"},
      {"signature bit flipped", Armor(flipped), "does not verify"},
      {"hash md5", with([](SshSig& s) { s.hash_algorithm = "md5"; }), "md5"},
      {"unknown key type", with([](SshSig& s) { s.public_key = Str("ssh-rsa") + Str("\x01\x00\x01") + Str("x"); }),
       "ssh-rsa"},
      {"key truncated", with([](SshSig& s) { s.public_key = s.public_key.substr(0, 20); }), "public key"},
      {"key of wrong size", with([](SshSig& s) { s.public_key = Str("ssh-ed25519") + Str("short"); }),
       "public key"},
      {"signature type differs from key", with([&](SshSig& s) { s.signature = ec_sig; }),
       "does not match key type"},
      {"signature empty", with([](SshSig& s) { s.signature.clear(); }), "malformed"},
      {"not base64", "-----BEGIN SSH SIGNATURE-----\n!!!!\n-----END SSH SIGNATURE-----\n", "base64"},
      {"no END line", "-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n", "END"},
      {"empty armor", "-----BEGIN SSH SIGNATURE-----\n-----END SSH SIGNATURE-----\n", "SSHSIG"},
      {"unknown format", "hello\n", "not a recognized"},
      {"over 64 KiB", Armor(blob + std::string(70 << 10, 'A')), "64 KiB"},
  };
  for (const auto& c : cases) {
    INFO(c.name);
    auto check = Check(kSource, f.Splice(c.armored));
    CHECK(check.exists);
    CHECK(check.signed_commit);
    CHECK_FALSE(check.signature_valid);
    CHECK(check.signer_key.empty());
    CHECK(check.detail.find(c.detail) != std::string::npos);
  }
}

TEST_CASE("CheckCommit: malformed ECDSA signature values are invalid", "[attest][git]") {
  const Repos& f = Fixture();
  SshSig valid = ParseSshSig(f.Sign(f.ec_key, "git", f.base_content));
  REQUIRE(Check(kSource, f.Splice(Armor(valid.Blob()))).signature_valid);
  auto with_value = [&](const std::string& value) {
    SshSig s = valid;
    s.signature = Str("ecdsa-sha2-nistp256") + Str(value);
    return Check(kSource, f.Splice(Armor(s.Blob())));
  };
  std::string big(40, '\x01');
  for (const auto& value :
       std::vector<std::string>{Str(big) + Str("\x01"), Str("\x80") + Str("\x01"),
                                Str("") + Str("\x01"), Str("\x01"), Str("\x01") + Str("\x01") + "x"}) {
    auto c = with_value(value);
    CHECK(c.signed_commit);
    CHECK_FALSE(c.signature_valid);
    CHECK_FALSE(c.detail.empty());
  }
}

TEST_CASE("CheckCommit: a commit over 4 MiB exists but its signature is not checked",
          "[attest][git]") {
  const Repos& f = Fixture();
  std::string text = f.base_content;
  size_t end_of_headers = text.find("\n\n");
  std::string sig = f.good_git_sig;
  std::string header = "gpgsig";
  for (size_t start = 0; start < sig.size();) {
    size_t nl = sig.find('\n', start);
    header += " " + sig.substr(start, nl - start) + "\n";
    start = nl + 1;
  }
  text.insert(end_of_headers + 1, header);
  text += std::string(5 << 20, 'x') + "\n";
  WriteFile(f.tmp.Sub("big"), text);
  std::string id = f.Git({"hash-object", "-t", "commit", "-w", "--literally", f.tmp.Sub("big")});
  auto c = Check(kSource, id);
  CHECK(c.exists);
  CHECK_FALSE(c.signature_valid);
  CHECK(c.detail.find("more than 4 MiB") != std::string::npos);
}

TEST_CASE("CheckCommit may be called from several threads at once", "[attest][git]") {
  const Repos& f = Fixture();
  std::vector<std::thread> threads;
  std::atomic<int> good{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&f, &good, t] {
      for (int i = 0; i < 10; ++i) {
        auto r = CheckCommit(f.root, t % 2 == 0 ? kSource : kBareSource, i % 2 == 0 ? f.c2 : f.c3);
        if (r.ok() && r->signature_valid &&
            r->signer_key == (i % 2 == 0 ? f.ed_pub : f.ec_pub) &&
            r->reachable_from == std::vector<std::string>{"feature", "main"}) {
          ++good;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  CHECK(good == 40);
}

TEST_CASE("CheckCommit: errors for bad commits and unknown mirrors", "[attest][git]") {
  const Repos& f = Fixture();
  for (const std::string& commit :
       std::vector<std::string>{"", "abc", std::string(39, 'a'), std::string(41, 'a'),
                                std::string(40, 'g'), f.c1.substr(0, 39) + " "}) {
    auto r = CheckCommit(f.root, kSource, commit);
    REQUIRE_FALSE(r.ok());
    CHECK(r.status().code() == Code::kInvalidArgument);
    CHECK(r.status().reason() == "COMMIT_INVALID");
  }
  auto absent = CheckCommit(f.root, "https://git.example.org/health/absent.git", f.c1);
  REQUIRE_FALSE(absent.ok());
  CHECK(absent.status().code() == Code::kNotFound);
  CHECK(absent.status().reason() == "MIRROR_UNKNOWN");
  CHECK(absent.status().message().find("git.example.org/health/absent(.git) under the mirror root") !=
        std::string::npos);
  CHECK(absent.status().message().find(f.root) == std::string::npos);

  // A directory that is not a repository, even inside one, is no mirror.
  ::mkdir((f.root + "/git.example.org/health/train/notarepo").c_str(), 0755);
  auto nested = CheckCommit(f.root, "https://git.example.org/health/train/notarepo", f.c1);
  REQUIRE_FALSE(nested.ok());
  CHECK(nested.status().reason() == "MIRROR_UNKNOWN");

  auto no_root = CheckCommit("", kSource, f.c1);
  REQUIRE_FALSE(no_root.ok());
  CHECK(no_root.status().reason() == "MIRROR_UNKNOWN");

  auto bad_uri = CheckCommit(f.root, "https://git.example.org/../health/train", f.c1);
  REQUIRE_FALSE(bad_uri.ok());
  CHECK(bad_uri.status().reason() == "SOURCE_URI_INVALID");
}

}  // namespace
}  // namespace sigil::attest
