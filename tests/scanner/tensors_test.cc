// FileReport::tensors: where each dense tensor of a model file lives, for
// the validator to stream. Offsets are checked by reading the bytes there
// and comparing them with what fixtures/make_fixtures.py wrote.
#include <catch2/catch.hpp>

#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "scanner/scanner.h"
#include "tests/scanner/corpus.h"

namespace sigil::scanner {
namespace {

using testing::BuildZip;
using testing::FindRule;
using testing::Pickle;
using testing::Rules;
using testing::Safetensors;
using testing::TorchZip;
using testing::ZipMember;

std::string Fixture(const std::string& name) {
  auto data = core::ReadFile(std::string(SIGIL_SCANNER_FIXTURES) + "/" + name);
  REQUIRE(data.ok());
  return *data;
}

// Little-endian bytes of values (the test hosts are little-endian, as the
// files are).
template <typename T>
std::string Bytes(std::initializer_list<T> values) {
  std::string out;
  for (T v : values) {
    char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.append(b, sizeof(T));
  }
  return out;
}

std::string U16s(std::initializer_list<uint16_t> v) { return Bytes<uint16_t>(v); }

struct Expected {
  std::string name;
  std::string dtype;
  std::vector<uint64_t> shape;
  std::string bytes;  // what the file holds at the tensor's offset
};

// The report lists exactly `expected`, in order, and each tensor's bytes
// are the ones expected.
void CheckTensors(const std::string& file, const FileReport& r,
                  const std::vector<Expected>& expected) {
  INFO(Rules(r));
  REQUIRE(r.tensors.size() == expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    const TensorLayout& t = r.tensors[i];
    const Expected& e = expected[i];
    INFO(e.name);
    CHECK(t.name == e.name);
    CHECK(t.dtype == e.dtype);
    CHECK(t.shape == e.shape);
    CHECK(t.length == e.bytes.size());
    REQUIRE(t.offset <= file.size());
    REQUIRE(t.length <= file.size() - t.offset);
    CHECK(file.substr(t.offset, t.length) == e.bytes);
  }
}

std::vector<std::string> Names(const FileReport& r) {
  std::vector<std::string> names;
  for (const TensorLayout& t : r.tensors) names.push_back(t.name);
  return names;
}

// ---------------------------------------------------------------- safetensors

TEST_CASE("tensors: safetensors entries in file order", "[scanner]") {
  std::string header =
      R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2,2],"data_offsets":[6,22]},)"
      R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},)"
      R"("e":{"dtype":"I64","shape":[0],"data_offsets":[22,22]},)"
      R"("q":{"dtype":"F8_E4M3","shape":[],"data_offsets":[22,23]}})";
  std::string file = Safetensors(header, 0);
  uint64_t base = file.size();
  file += U16s({0x3f80, 0x4000, 0x4040}) + Bytes<float>({1, 2, 3, 4}) + "\x7f";
  FileReport r = ScanBytes(file);
  CHECK(r.verdict == Verdict::kClean);
  CheckTensors(file, r,
               {{"b", "BF16", {3}, U16s({0x3f80, 0x4000, 0x4040})},
                {"w", "F32", {2, 2}, Bytes<float>({1, 2, 3, 4})},
                {"e", "I64", {0}, ""},
                {"q", "F8_E4M3", {}, "\x7f"}});
  CHECK(r.tensors[0].offset == base);

  // Not listed unless the header is structurally valid.
  std::string gap = Safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8);
  r = ScanBytes(gap);
  CHECK(r.verdict == Verdict::kInvalid);
  CHECK(r.tensors.empty());
  r = ScanBytes(Safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 9));
  CHECK(r.tensors.empty());

  // Inside an archive the offsets would not be the file's: not listed.
  std::string inner = Safetensors(R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", 4);
  r = ScanBytes(BuildZip({ZipMember("model.safetensors", inner)}));
  CHECK(r.format == Format::kZip);
  CHECK(r.tensors.empty());
}

TEST_CASE("tensors: the list stops at max_tensors and says so", "[scanner]") {
  std::string header = "{";
  for (int i = 0; i < 5; ++i) {
    if (i > 0) header += ",";
    header += "\"t" + std::to_string(i) + "\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[" +
              std::to_string(i) + "," + std::to_string(i + 1) + "]}";
  }
  header += "}";
  ScanOptions options;
  options.max_tensors = 3;
  FileReport r = ScanBytes(Safetensors(header, 5), options);
  CHECK(Names(r) == std::vector<std::string>{"t0", "t1", "t2"});
  const Finding* f = FindRule(r, "tensors.truncated");
  REQUIRE(f != nullptr);
  CHECK(f->severity == Severity::kInfo);
  CHECK(r.verdict == Verdict::kClean);

  // torch archives too.
  r = ScanBytes(Fixture("tensors.pt"), options);
  CHECK(Names(r) == std::vector<std::string>{"f32", "f16", "bf16"});
  CHECK(FindRule(r, "tensors.truncated") != nullptr);
}

TEST_CASE("tensors: scan reports carry a count, never the list", "[scanner]") {
  FileReport r = ScanBytes(Fixture("tensors.pt"));
  core::Json j = ReportToJson(r);
  CHECK(j["tensor_count"] == r.tensors.size());
  CHECK_FALSE(j.contains("tensors"));
}

// ---------------------------------------------------------------- PyTorch

TEST_CASE("tensors: torch.save state dict, each dtype at its storage's bytes", "[scanner]") {
  std::string file = Fixture("tensors.pt");
  FileReport r = ScanBytes(file);
  CHECK(r.format == Format::kTorchZip);
  CHECK(r.verdict == Verdict::kClean);
  // "transposed" is not contiguous, so it is not listed.
  CheckTensors(file, r,
               {{"f32", "F32", {2, 3}, Bytes<float>({0, 1, 2, 3, 4, 5})},
                {"f16", "F16", {4}, U16s({0x0000, 0x3c00, 0x4000, 0x4200})},
                {"bf16", "BF16", {3}, U16s({0x0000, 0x3f80, 0x4000})},
                {"i64", "I64", {5}, Bytes<int64_t>({0, 1, 2, 3, 4})},
                {"scalar", "F64", {}, Bytes<double>({7})},
                {"view", "F32", {4}, Bytes<float>({4, 5, 6, 7})}});
  // The view starts 4 elements into its storage, which holds 0..9.
  CHECK(file.substr(r.tensors[5].offset - 16, 40) ==
        Bytes<float>({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}));

  // The same through ScanFile.
  auto f = ScanFile(std::string(SIGIL_SCANNER_FIXTURES) + "/tensors.pt");
  REQUIRE(f.ok());
  REQUIRE(f->tensors.size() == r.tensors.size());
  CHECK(f->tensors[5].offset == r.tensors[5].offset);
}

TEST_CASE("tensors: nested checkpoint dicts join their keys with dots", "[scanner]") {
  std::string file = Fixture("nested.pt");
  FileReport r = ScanBytes(file);
  CHECK(r.verdict == Verdict::kClean);
  CheckTensors(file, r,
               {{"model.fc.weight", "F32", {2, 2}, Bytes<float>({0, 1, 2, 3})},
                {"model.fc.bias", "F32", {2}, Bytes<float>({10, 20})},
                {"optimizer.state.0.exp_avg", "F32", {2}, Bytes<float>({0.5, 0.5})}});

  // The older fixtures: a state dict, and a checkpoint whose list of
  // parameters has no names.
  FileReport sd = ScanBytes(Fixture("state_dict.pt"));
  CHECK(Names(sd) == std::vector<std::string>{"fc.weight", "fc.bias"});
  REQUIRE(sd.tensors.size() == 2);
  CHECK(sd.tensors[0].shape == std::vector<uint64_t>{2, 4});
  CHECK(sd.tensors[0].length == 32);
  CHECK(sd.tensors[1].length == 8);
  FileReport ckpt = ScanBytes(Fixture("checkpoint.pt"));
  CHECK(Names(ckpt) == std::vector<std::string>{"weights.fc.weight", "weights.fc.bias"});
  // Legacy (pre-zip) files are not covered.
  CHECK(ScanBytes(Fixture("state_dict_legacy.pt")).tensors.empty());
}

TEST_CASE("tensors: TorchScript modules by attribute path, constants as the code names them",
          "[scanner]") {
  std::string file = Fixture("traced.pt");
  FileReport r = ScanBytes(file);
  CHECK(r.format == Format::kTorchScript);
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kClean);
  CheckTensors(file, r,
               {{"fc.weight", "F32", {2, 3}, Bytes<float>({0, 1, 2, 3, 4, 5})},
                {"fc.bias", "F32", {2}, Bytes<float>({10, 20})},
                {"CONSTANTS.c0", "F32", {2}, Bytes<float>({0.5, 0.25})}});

  FileReport ts = ScanBytes(Fixture("torchscript.pt"));
  CHECK(Names(ts) == std::vector<std::string>{"fc.weight", "fc.bias"});
  REQUIRE(ts.tensors.size() == 2);
  CHECK(ts.tensors[0].shape == std::vector<uint64_t>{2, 4});
  CHECK(ts.tensors[0].offset % 64 == 0);  // torch aligns storages
}

// data.pkl of {name: _rebuild_tensor_v2(storage key, offset, shape, stride)}.
struct TensorSpec {
  std::string name;
  std::string storage_class = "FloatStorage";
  std::string key = "0";
  uint8_t offset = 0;
  std::vector<uint8_t> shape = {2, 2};
  std::vector<uint8_t> stride = {2, 1};
};

std::string DataPkl(const std::vector<TensorSpec>& tensors) {
  Pickle p(2);
  p.Global("collections", "OrderedDict").EmptyTuple().Reduce().Mark();
  for (const TensorSpec& t : tensors) {
    p.Str(t.name).Global("torch._utils", "_rebuild_tensor_v2").Mark();
    p.Mark().Str("storage").Global("torch", t.storage_class).Str(t.key).Str("cpu").Int(4).Tuple()
        .Raw("Q");
    p.Int(t.offset).Mark();
    for (uint8_t d : t.shape) p.Int(d);
    p.Tuple().Mark();
    for (uint8_t s : t.stride) p.Int(s);
    p.Tuple().Raw("\x89").Global("collections", "OrderedDict").EmptyTuple().Reduce().Tuple()
        .Reduce();
  }
  return p.Raw("u").Stop().bytes();
}

TEST_CASE("tensors: torch tensors that cannot be placed are left out", "[scanner]") {
  // TorchZip's storage data/0 holds 16 bytes: four floats.
  std::string ok = TorchZip("archive", DataPkl({{"ok"}}));
  FileReport r = ScanBytes(ok);
  CHECK(Names(r) == std::vector<std::string>{"ok"});

  struct Case {
    std::string what;
    TensorSpec spec;
  };
  std::vector<Case> cases = {
      {"storage member missing", {"t", "FloatStorage", "1"}},
      {"offset beyond the storage", {"t", "FloatStorage", "0", 1}},
      {"shape beyond the storage", {"t", "FloatStorage", "0", 0, {5}, {1}}},
      {"offset past the end", {"t", "FloatStorage", "0", 200, {0}, {1}}},
      {"strided", {"t", "FloatStorage", "0", 0, {2}, {2}}},
      {"transposed", {"t", "FloatStorage", "0", 0, {2, 2}, {1, 2}}},
      {"rank mismatch", {"t", "FloatStorage", "0", 0, {2, 2}, {1}}},
      {"dtype without a safetensors name", {"t", "ComplexFloatStorage"}},
      {"storage key outside data/", {"t", "FloatStorage", "../version"}},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    FileReport bad = ScanBytes(TorchZip("archive", DataPkl({{"ok"}, c.spec})));
    CHECK(Names(bad) == std::vector<std::string>{"ok"});
  }

  // Dims of size 1 may have any stride, and an empty tensor fits anywhere
  // in its storage, as torch sees them.
  r = ScanBytes(TorchZip("archive", DataPkl({{"row", "FloatStorage", "0", 0, {1, 4}, {9, 1}},
                                             {"none", "FloatStorage", "0", 4, {0, 3}, {7, 7}},
                                             {"last", "HalfStorage", "0", 6, {2}, {1}}})));
  CHECK(Names(r) == std::vector<std::string>{"row", "none", "last"});
  REQUIRE(r.tensors.size() == 3);
  CHECK(r.tensors[1].length == 0);
  CHECK(r.tensors[2].offset == r.tensors[0].offset + 12);
  CHECK(r.tensors[2].length == 4);

  // A compressed storage is not a window into the file.
  std::vector<ZipMember> members = {{"archive/data.pkl", DataPkl({{"t"}})},
                                    {"archive/data/0", std::string(16, '\0')},
                                    {"archive/version", "3\n"}};
  members[1].deflate = true;
  r = ScanBytes(BuildZip(members));
  CHECK(r.format == Format::kTorchZip);
  CHECK(r.tensors.empty());

  // A torch archive inside another archive: offsets would not be the file's.
  r = ScanBytes(BuildZip({ZipMember("inner.pt", ok)}));
  CHECK(r.tensors.empty());
  // Nor is the zip view of a polyglot listed.
  r = ScanBytes(Pickle(2).None().Stop().bytes() + ok);
  CHECK(r.tensors.empty());
}

TEST_CASE("tensors: hostile dict graphs stay bounded", "[scanner]") {
  // d = {"w": tensor}; d["self"] = d: the cycle is not followed.
  Pickle cycle(2);
  cycle.EmptyDict().Put(0).Str("w").Global("torch._utils", "_rebuild_tensor_v2").Mark();
  cycle.Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(4).Tuple()
      .Raw("Q");
  cycle.Int(0).Int(4).Tuple1().Int(1).Tuple1().Raw("\x89").None().Tuple().Reduce().Raw("s");
  cycle.Str("self").Get(0).Raw("s").Stop();
  FileReport r = ScanBytes(TorchZip("archive", cycle.bytes()));
  INFO(Rules(r));
  CHECK(Names(r) == std::vector<std::string>{"w"});

  // d0 = {"w": tensor}, d(i+1) = {"a": di, "b": di}: 2^40 paths to one
  // tensor; the list stops, quickly, at max_tensors.
  Pickle dag(2);
  dag.EmptyDict().Put(0).Str("w").Global("torch._utils", "_rebuild_tensor_v2").Mark();
  dag.Mark().Str("storage").Global("torch", "FloatStorage").Str("0").Str("cpu").Int(4).Tuple()
      .Raw("Q");
  dag.Int(0).Int(4).Tuple1().Int(1).Tuple1().Raw("\x89").None().Tuple().Reduce().Raw("s").Pop();
  for (uint8_t i = 0; i < 40; ++i) {
    dag.EmptyDict().Put(static_cast<uint8_t>(i + 1)).Mark().Str("a").Get(i).Str("b").Get(i)
        .Raw("u").Pop();
  }
  dag.Get(40).Stop();
  ScanOptions options;
  options.max_tensors = 1000;
  r = ScanBytes(TorchZip("archive", dag.bytes()), options);
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.tensors.size() == 1000);
  CHECK(FindRule(r, "tensors.truncated") != nullptr);
  CHECK(r.tensors.back().name.size() == 81);  // 40 "a." / "b." and "w"
}

}  // namespace
}  // namespace sigil::scanner
