#include <catch2/catch.hpp>

#include "scanner/scanner.h"
#include "tests/scanner/corpus.h"

namespace sigil::scanner {
namespace {

using testing::FindRule;
using testing::Gguf;
using testing::Le64;
using testing::Rules;
using testing::Safetensors;

// ---------------------------------------------------------------- safetensors

const char kTwoTensors[] =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";

TEST_CASE("safetensors: a well-formed file is clean", "[scanner]") {
  FileReport r = ScanBytes(Safetensors(kTwoTensors, 22));
  INFO(Rules(r));
  CHECK(r.format == Format::kSafetensors);
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.findings.empty());

  // Entries in any order, zero-sized tensors, an empty header.
  r = ScanBytes(Safetensors(
      R"({"z":{"dtype":"I64","shape":[0],"data_offsets":[8,8]},)"
      R"("y":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}})",
      8));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kClean);
  CHECK(ScanBytes(Safetensors("{}", 0)).verdict == Verdict::kClean);
}

TEST_CASE("safetensors: malformed headers are invalid and name the cause", "[scanner]") {
  struct Case {
    std::string name;
    std::string file;
    std::string rule;
  };
  auto entry = [](const std::string& dtype, const std::string& shape, const std::string& offs) {
    return R"({"t":{"dtype":")" + dtype + R"(","shape":)" + shape + R"(,"data_offsets":)" + offs +
           "}}";
  };
  std::string good = Safetensors(kTwoTensors, 22);
  std::vector<Case> cases = {
      {"truncated data", good.substr(0, good.size() - 1), "safetensors.not_tiled"},
      {"trailing data", good + "x", "safetensors.not_tiled"},
      {"header past the end", Le64(1000) + "{}", "safetensors.truncated"},
      {"oversized header length", Le64(200'000'000) + "{\"a\"" + std::string(32, ' '),
       "safetensors.header_too_large"},
      {"short file", Le64(20) + "{\"a\"", "safetensors.truncated"},
      {"overlap",
       Safetensors(R"({"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},)"
                   R"("b":{"dtype":"U8","shape":[8],"data_offsets":[4,12]}})",
                   12),
       "safetensors.not_tiled"},
      {"gap",
       Safetensors(R"({"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},)"
                   R"("b":{"dtype":"U8","shape":[4],"data_offsets":[8,12]}})",
                   12),
       "safetensors.not_tiled"},
      {"not starting at zero", Safetensors(entry("U8", "[4]", "[4,8]"), 8),
       "safetensors.not_tiled"},
      {"size disagrees with shape", Safetensors(entry("F32", "[4]", "[0,8]"), 8),
       "safetensors.size_mismatch"},
      {"bad dtype", Safetensors(entry("F33", "[1]", "[0,4]"), 4), "safetensors.bad_dtype"},
      {"shape overflow",
       Safetensors(entry("F32", "[4294967296,4294967296,16]", "[0,0]"), 0),
       "safetensors.shape_overflow"},
      {"byte size overflow", Safetensors(entry("F64", "[4611686018427387904]", "[0,0]"), 0),
       "safetensors.shape_overflow"},
      {"negative dim", Safetensors(entry("U8", "[-1]", "[0,0]"), 0), "safetensors.bad_entry"},
      {"end before begin", Safetensors(entry("U8", "[0]", "[4,0]"), 4),
       "safetensors.bad_offsets"},
      {"duplicate key",
       Safetensors(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                   R"("a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                   2),
       "safetensors.duplicate_key"},
      {"not JSON", Safetensors("{\"a\": nope}", 0), "safetensors.bad_header"},
      {"too deep", Safetensors(R"({"a":{"b":{"c":[[1]]}}})", 0), "safetensors.bad_header"},
      {"metadata not strings", Safetensors(R"({"__metadata__":{"a":1}})", 0),
       "safetensors.bad_metadata"},
      {"unknown field", Safetensors(R"({"t":{"dtype":"U8","shape":[0],"data_offsets":[0,0],"x":1}})", 0),
       "safetensors.bad_entry"},
      {"invalid UTF-8", Safetensors("{\"\xff\":1}", 0), "safetensors.bad_header"},
  };
  for (const Case& c : cases) {
    FileReport r = ScanBytes(c.file);
    INFO(c.name + ": " + Rules(r));
    CHECK(r.verdict == Verdict::kInvalid);
    CHECK(FindRule(r, c.rule) != nullptr);
  }
}

// ---------------------------------------------------------------------- GGUF

Gguf BenignGguf() {
  Gguf g;
  g.KvString("general.architecture", "llama")
      .KvU32("general.alignment", 32)
      .KvStringArray("tokenizer.ggml.tokens", {"<s>", "</s>", "hello"})
      .KvString("tokenizer.chat_template",
                "{% for message in messages %}{{ '<|' + message['role'] + '|>' + "
                "message['content'] }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' "
                "}}{% endif %}")
      .Tensor("token_embd.weight", {64, 3}, 1)
      .Tensor("blk.0.attn_q.weight", {32, 2}, 8)
      .Tensor("output_norm.weight", {5}, 0);
  return g;
}

TEST_CASE("gguf: a well-formed file is clean", "[scanner]") {
  FileReport r = ScanBytes(BenignGguf().Build());
  INFO(Rules(r));
  CHECK(r.format == Format::kGguf);
  CHECK(r.verdict == Verdict::kClean);
  CHECK(r.findings.empty());
}

TEST_CASE("gguf: malformed files are invalid and name the cause", "[scanner]") {
  struct Case {
    std::string name;
    std::string file;
    std::string rule;
  };
  std::string good = BenignGguf().Build();
  std::string huge_string = good;
  // The first key's length (right after the 24-byte header) made enormous.
  huge_string.replace(24, 8, Le64(0x7fffffffffffffffULL));
  std::vector<Case> cases = {
      {"truncated header", good.substr(0, 10), "gguf.truncated"},
      {"truncated tensor data", good.substr(0, good.size() - 4), "gguf.truncated"},
      {"truncated metadata", good.substr(0, 100), "gguf.truncated"},
      {"string longer than the file", huge_string, "gguf.truncated"},
      {"impossible tensor count", BenignGguf().Build(1'000'000'000), "gguf.bad_count"},
      {"impossible kv count", BenignGguf().Build(-1, 0x7fffffffffffffffLL), "gguf.bad_count"},
      {"version 1", std::string("GGUF\x01\x00\x00\x00", 8) + std::string(16, '\0'),
       "gguf.version"},
      {"alignment not a power of two", Gguf().KvU32("general.alignment", 24).Build(),
       "gguf.bad_alignment"},
      {"misaligned offset", Gguf().Tensor("a", {4}, 0).Tensor("b", {4}, 0, 16).Build(),
       "gguf.bad_alignment"},
      {"not contiguous", Gguf().Tensor("a", {4}, 0).Tensor("b", {4}, 0, 64).Build(),
       "gguf.not_contiguous"},
      {"five dimensions", Gguf().Tensor("a", {1, 1, 1, 1, 1}, 0).Build(), "gguf.bad_dims"},
      {"unknown type", Gguf().Tensor("a", {4}, 99).Build(), "gguf.bad_type"},
      {"block size", Gguf().Tensor("a", {33}, 8).Build(), "gguf.bad_dims"},
      {"shape overflow", Gguf().Tensor("a", {1ULL << 40, 1ULL << 40}, 0).Build(),
       "gguf.shape_overflow"},
      {"duplicate tensor", Gguf().Tensor("a", {4}, 0).Tensor("a", {4}, 0).Build(),
       "gguf.duplicate_tensor"},
      {"duplicate key", Gguf().KvU32("x", 1).KvU32("x", 2).Build(), "gguf.duplicate_key"},
  };
  for (const Case& c : cases) {
    FileReport r = ScanBytes(c.file);
    INFO(c.name + ": " + Rules(r));
    CHECK(r.format == Format::kGguf);
    CHECK(r.verdict == Verdict::kInvalid);
    CHECK(FindRule(r, c.rule) != nullptr);
  }
}

TEST_CASE("gguf: chat templates reaching Python internals are blocked", "[scanner]") {
  for (const std::string& tpl : {
           std::string("{{ ''.__class__.__mro__[1].__subclasses__() }}"),
           std::string("{{ cycler.__init__.__globals__.os.popen('id').read() }}"),
           std::string("{% import 'x' as y %}"),
           std::string("{{ self._TemplateReference__context.joiner.__init__ }}"),
       }) {
    Gguf g;
    g.KvString("tokenizer.chat_template", tpl);
    FileReport r = ScanBytes(g.Build());
    INFO(tpl + " " + Rules(r));
    CHECK(r.verdict == Verdict::kBlocked);
    CHECK(FindRule(r, "gguf.template_injection") != nullptr);
  }
  Gguf named;
  named.KvString("tokenizer.chat_template.tool_use", "{{ x.__class__ }}");
  CHECK(ScanBytes(named.Build()).verdict == Verdict::kBlocked);

  Gguf prose;
  prose.KvString("tokenizer.chat_template", "It is important to answer; macos. ok");
  CHECK(ScanBytes(prose.Build()).verdict == Verdict::kClean);
}

// --------------------------------------------------------------------- NumPy

TEST_CASE("npy: headers are parsed as literals, never evaluated", "[scanner]") {
  std::string good = testing::Npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
                                  std::string(48, '\0'));
  FileReport r = ScanBytes(good);
  INFO(Rules(r));
  CHECK(r.format == Format::kNumpy);
  CHECK(r.verdict == Verdict::kClean);

  struct Case {
    std::string name;
    std::string header;
    std::string data;
    std::string rule;
  };
  std::vector<Case> cases = {
      {"code in the header", "{'descr': __import__('os').system('id'), 'fortran_order': False, 'shape': ()}",
       "", "npy.bad_header"},
      {"unknown key", "{'descr': '<f4', 'fortran_order': False, 'shape': (), 'x': 1}", "",
       "npy.bad_header"},
      {"repeated key", "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}",
       "", "npy.bad_header"},
      {"bad dtype", "{'descr': '<f3', 'fortran_order': False, 'shape': (1,)}", "xxx",
       "npy.bad_header"},
      {"negative shape", "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}", "",
       "npy.bad_header"},
      {"shape overflow",
       "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 16)}", "",
       "npy.bad_header"},
      {"byte overflow", "{'descr': '<f8', 'fortran_order': False, 'shape': (4611686018427387904,)}",
       "", "npy.shape_overflow"},
      {"truncated data", "{'descr': '<i4', 'fortran_order': False, 'shape': (3,)}",
       std::string(8, '\0'), "npy.truncated"},
      {"unterminated", "{'descr': '<i4", "", "npy.bad_header"},
  };
  for (const Case& c : cases) {
    FileReport b = ScanBytes(testing::Npy(c.header, c.data));
    INFO(c.name + ": " + Rules(b));
    CHECK(b.verdict == Verdict::kInvalid);
    CHECK(FindRule(b, c.rule) != nullptr);
  }
  std::string header_past_end = std::string("\x93NUMPY\x01\x00\xff\x7f", 10) + "{}";
  CHECK(FindRule(ScanBytes(header_past_end), "npy.truncated") != nullptr);
}

TEST_CASE("npy: object arrays carry a pickle, which is analysed", "[scanner]") {
  testing::Pickle evil(3);
  evil.Call("os", "system", "id").Stop();
  FileReport r = ScanBytes(
      testing::Npy("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }", evil.bytes()));
  INFO(Rules(r));
  CHECK(r.format == Format::kNumpy);
  CHECK(r.verdict == Verdict::kBlocked);
  CHECK(FindRule(r, "npy.object_dtype") != nullptr);
  CHECK(FindRule(r, "pickle.global")->global == "os.system");

  // A structured dtype with an object field is a pickle too.
  r = ScanBytes(testing::Npy(
      "{'descr': [('a', '<f4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }",
      evil.bytes()));
  INFO(Rules(r));
  CHECK(r.verdict == Verdict::kBlocked);
}

// ---------------------------------------------------------------------- ONNX

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
std::string Field(uint64_t field, const std::string& bytes) {
  return Varint(field << 3 | 2) + Varint(bytes.size()) + bytes;
}
std::string VarintField(uint64_t field, uint64_t v) { return Varint(field << 3) + Varint(v); }

std::string ExternalTensor(const std::string& location, const std::string& length) {
  std::string t = Field(8, "weight") + VarintField(2, 1) + Field(9, std::string(0, '\0'));
  t += Field(13, Field(1, "location") + Field(2, location));
  t += Field(13, Field(1, "offset") + Field(2, "0"));
  t += Field(13, Field(1, "length") + Field(2, length));
  t += VarintField(14, 1);
  return t;
}

std::string OnnxModel(const std::string& location, const std::string& length = "16",
                      bool in_subgraph = false) {
  std::string tensor = ExternalTensor(location, length);
  std::string graph;
  if (in_subgraph) {
    std::string sub = Field(5, tensor);
    std::string attr = Field(1, "then_branch") + Field(6, sub);
    graph = Field(1, Field(4, "If") + Field(5, attr));
  } else {
    graph = Field(5, tensor) + Field(1, Field(4, "MatMul"));
  }
  return VarintField(1, 8) + Field(2, "test") + Field(7, graph + Field(2, "g")) +
         Field(8, Field(1, "") + VarintField(2, 17));
}

TEST_CASE("onnx: external data must stay inside the model directory", "[scanner]") {
  FileReport r = ScanBytes(OnnxModel("weights.bin"), {}, "model/model.onnx");
  INFO(Rules(r));
  CHECK(r.format == Format::kOnnx);
  CHECK(r.verdict == Verdict::kClean);
  REQUIRE(r.external_data.size() == 1);
  CHECK(r.external_data[0].location == "weights.bin");
  CHECK(r.external_data[0].length == 16);

  for (const std::string& loc : {std::string("../../etc/shadow"), std::string("/etc/passwd"),
                                 std::string("a/../../b"), std::string("C:\\x")}) {
    for (bool sub : {false, true}) {
      FileReport b = ScanBytes(OnnxModel(loc, "16", sub));
      INFO(loc + " " + Rules(b));
      CHECK(b.format == Format::kOnnx);
      CHECK(FindRule(b, "onnx.external_path") != nullptr);
      CHECK(b.verdict == Verdict::kBlocked);
    }
  }
  FileReport bad = ScanBytes(OnnxModel("w.bin", "sixteen"));
  CHECK(FindRule(bad, "onnx.malformed") != nullptr);
  std::string model = OnnxModel("w.bin");
  FileReport cut = ScanBytes(model.substr(0, model.size() - 3));
  CHECK(cut.format == Format::kUnknown);
}

TEST_CASE("onnx: external data is checked against the version's files", "[scanner]") {
  FileReport model = ScanBytes(OnnxModel("weights.bin", "16"), {}, "m/model.onnx");
  FileReport weights = ScanBytes(std::string(16, '\0'), {}, "m/weights.bin");
  VersionReport v = AggregateReports({model, weights});
  CHECK(v.verdict == Verdict::kClean);

  FileReport small = ScanBytes(std::string(8, '\0'), {}, "m/weights.bin");
  v = AggregateReports({model, small});
  CHECK(v.verdict == Verdict::kInvalid);
  CHECK(FindRule(v.files[0], "onnx.external_bounds") != nullptr);

  v = AggregateReports({model});
  CHECK(v.verdict == Verdict::kInvalid);
  CHECK(FindRule(v.files[0], "onnx.external_missing") != nullptr);
}

}  // namespace
}  // namespace sigil::scanner

namespace sigil::scanner {
namespace {

TEST_CASE("corpus: truncation and random corruption of every format never crash", "[scanner]") {
  testing::Pickle evil(4);
  evil.Frame(20).Str("os").Memoize().Str("system").Memoize().StackGlobal().Str("id").Tuple1()
      .Reduce().Stop();
  testing::ZipMember deflated("archive/data.pkl", testing::TorchDataPkl(2));
  deflated.deflate = true;
  std::vector<std::string> corpus = {
      Safetensors(kTwoTensors, 22),
      BenignGguf().Build(),
      testing::Npy("{'descr': [('a', '<f4'), ('b', '|O')], 'fortran_order': False, 'shape': (1,), }",
                   evil.bytes()),
      OnnxModel("weights.bin", "16", true),
      testing::BuildZip({deflated, {"archive/data/0", std::string(64, 'x')}}, true),
      testing::BuildTar({{"pickle", evil.bytes(), '0'}, {"storages", "K\x01.", '0'}}),
      evil.bytes(),
      "cos\nsystem\n(S'echo pwned'\ntR.",
  };
  uint32_t seed = 7;
  auto next = [&seed] {
    seed = seed * 1664525u + 1013904223u;
    return seed >> 8;
  };
  for (const std::string& item : corpus) {
    for (size_t n = 0; n <= item.size(); ++n) {
      FileReport r = ScanBytes(std::string_view(item).substr(0, n));
      CHECK(r.size == n);
    }
    for (int i = 0; i < 2000; ++i) {
      std::string m = item;
      for (uint32_t k = 0, flips = 1 + next() % 6; k < flips; ++k) {
        m[next() % m.size()] = static_cast<char>(next() & 0xff);
      }
      FileReport r = ScanBytes(m);
      CHECK(r.size == m.size());
    }
  }
}

}  // namespace
}  // namespace sigil::scanner
