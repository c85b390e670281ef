#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (tests/fuzz/corpus/<name>/).

Seeds are small valid (and a few deliberately hostile) inputs of each format,
built here byte by byte or copied from the scanner's test fixtures, so the
fuzzers start inside their formats. Run it again after changing it; the
files are committed. Keys in the seeds are throwaway: the targets sign with
keys they make at start-up.
"""
import base64
import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURES = os.path.join(ROOT, "tests", "scanner", "fixtures")


def put(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fixture(target, name):
    shutil.copy(os.path.join(FIXTURES, name), os.path.join(HERE, "corpus", target, name))


def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), sort_keys=True)


# ---- pickle
def pickles():
    os.makedirs(os.path.join(HERE, "corpus", "pickle"), exist_ok=True)
    put("pickle", "proto0_dict", b"(dp0\nVa\np1\nI1\nsVb\np2\n(lp3\nF1.5\naI2\nas.")
    put("pickle", "proto2_state", b"\x80\x02}q\x00(X\x01\x00\x00\x00aq\x01K\x01X\x01\x00\x00\x00bq\x02]q\x03(G?\xf8\x00\x00\x00\x00\x00\x00K\x02eu.")
    put("pickle", "proto2_os_system", b"\x80\x02cos\nsystem\nq\x00X\n\x00\x00\x00echo pwnedq\x01\x85q\x02Rq\x03.")
    put("pickle", "proto4_frame_stack_global",
        b"\x80\x04\x95\x2a\x00\x00\x00\x00\x00\x00\x00\x8c\x0bcollections\x94\x8c\x0bOrderedDict\x94\x93\x94)R\x94}\x94b.")
    put("pickle", "proto1_inst_memo", b"(icopy_reg\n_reconstructor\np0\n(tb0g0\n.")
    put("pickle", "two_pickles", b"\x80\x02K\x01.\x80\x02K\x02.")
    put("pickle", "proto5_bytearray", b"\x80\x05\x96\x03\x00\x00\x00\x00\x00\x00\x00abc\x94.")
    fixture("pickle", "state_dict_legacy.pt")


# ---- zip
def zinfo(name, compress):
    info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))  # reproducible bytes
    info.compress_type = compress
    return info


def zips():
    os.makedirs(os.path.join(HERE, "corpus", "zip"), exist_ok=True)
    for name in ["state_dict.pt", "arrays.npz", "arrays_compressed.npz", "torchscript.pt", "checkpoint.pt"]:
        fixture("zip", name)
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_STORED) as z:
        z.writestr(zinfo("archive/data.pkl", zipfile.ZIP_STORED), b"\x80\x02}q\x00.")
        z.writestr(zinfo("archive/version", zipfile.ZIP_STORED), b"3\n")
        z.writestr(zinfo("archive/data/0", zipfile.ZIP_STORED), b"\x00" * 16)
    put("zip", "minimal_torch.zip", b.getvalue())
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(zinfo("config.json", zipfile.ZIP_DEFLATED), dumps({"class_name": "Sequential", "config": {"layers": []}}))
        z.writestr(zinfo("metadata.json", zipfile.ZIP_DEFLATED), dumps({"keras_version": "3.0.0"}))
        z.writestr(zinfo("model.weights.h5", zipfile.ZIP_DEFLATED), b"\x89HDF\r\n\x1a\n" + b"\x00" * 24)
    put("zip", "model.keras", b.getvalue())


# ---- safetensors
def safetensors_file(tensors, metadata=None, pad=True):
    header = {}
    data = b""
    for name, dtype, shape, payload in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    if metadata is not None:
        header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + data


def safetensors():
    put("safetensors", "two_tensors", safetensors_file(
        [("weight", "F32", [2, 2], struct.pack("<4f", 1, 2, 3, 4)), ("bias", "F16", [2], b"\x00\x3c\x00\x40")],
        {"format": "pt"}))
    put("safetensors", "scalar_and_empty", safetensors_file(
        [("s", "I64", [], struct.pack("<q", 7)), ("e", "BF16", [0, 3], b"")]))
    put("safetensors", "many_dtypes", safetensors_file(
        [("a", "U8", [3], b"abc"), ("b", "BOOL", [1], b"\x01"), ("c", "F8_E4M3", [2], b"\x01\x02"),
         ("d", "I32", [1, 1], b"\x01\x00\x00\x00"), ("f", "F64", [1], struct.pack("<d", 0.5))]))


# ---- gguf
def gguf_string(s):
    s = s.encode()
    return struct.pack("<Q", len(s)) + s


def gguf_kv(key, vtype, value):
    out = gguf_string(key) + struct.pack("<I", vtype)
    if vtype == 8:  # string
        out += gguf_string(value)
    elif vtype == 4:  # uint32
        out += struct.pack("<I", value)
    elif vtype == 6:  # float32
        out += struct.pack("<f", value)
    elif vtype == 7:  # bool
        out += struct.pack("<B", value)
    elif vtype == 9:  # array of strings
        out += struct.pack("<IQ", 8, len(value)) + b"".join(gguf_string(v) for v in value)
    return out


def gguf_file(version=3, alignment=32):
    kvs = [gguf_kv("general.architecture", 8, "llama"), gguf_kv("general.alignment", 4, alignment),
           gguf_kv("llama.rope.freq_base", 6, 10000.0), gguf_kv("tokenizer.ggml.tokens", 9, ["<s>", "</s>", "a"]),
           gguf_kv("general.flag", 7, 1)]
    tensors = [("tok_embd.weight", [4, 2], 0, 0), ("output.weight", [2], 0, 32)]  # F32
    out = b"GGUF" + struct.pack("<IQQ", version, len(tensors), len(kvs)) + b"".join(kvs)
    for name, dims, ggml_type, offset in tensors:
        out += gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        out += struct.pack("<IQ", ggml_type, offset)
    out += b"\x00" * ((alignment - len(out) % alignment) % alignment)
    return out + b"\x00" * 40


def gguf():
    put("gguf", "llama_v3", gguf_file())
    put("gguf", "v2_align64", gguf_file(version=2, alignment=64))


# ---- npy
def npys():
    os.makedirs(os.path.join(HERE, "corpus", "npy"), exist_ok=True)
    for name in ["array.npy", "array_fortran.npy", "structured.npy", "objects.npy"]:
        fixture("npy", name)
    header = b"{'descr': '<i2', 'fortran_order': False, 'shape': (2, 3), }"
    header += b" " * ((64 - (10 + len(header) + 1) % 64) % 64) + b"\n"
    put("npy", "v1_int16", b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + b"\x00" * 12)
    header = b"{'descr': '<f4', 'fortran_order': False, 'shape': (), }"
    header += b" " * ((64 - (12 + len(header) + 1) % 64) % 64) + b"\n"
    put("npy", "v2_scalar", b"\x93NUMPY\x02\x00" + struct.pack("<I", len(header)) + header + b"\x00" * 4)


# ---- manifest
def digest(data):
    return "sha256:" + hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


def descriptor(media_type, data, title=None):
    d = {"mediaType": media_type, "digest": digest(data), "size": len(data)}
    if title:
        d["annotations"] = {"org.opencontainers.image.title": title}
    return d


def manifests():
    config = descriptor("application/vnd.cncf.model.config.v1+json", "{}")
    layers = [descriptor("application/octet-stream", "w", "model.safetensors"),
              descriptor("application/octet-stream", "t", "tokenizer/vocab.json")]
    put("manifest", "model", dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                    "artifactType": "application/vnd.cncf.model.manifest.v1+json",
                                    "config": config, "layers": layers,
                                    "annotations": {"org.opencontainers.image.created": "2026-01-01T00:00:00Z"}}))
    put("manifest", "referrer", dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                       "artifactType": "application/vnd.dsse.envelope.v1+json",
                                       "config": descriptor("application/vnd.oci.empty.v1+json", "{}"),
                                       "layers": [descriptor("application/vnd.dsse.envelope.v1+json", "e")],
                                       "subject": descriptor("application/vnd.oci.image.manifest.v1+json", "m")}))
    put("manifest", "tool", dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                                   "artifactType": "application/vnd.sigil.tool.manifest.v1+json",
                                   "config": config, "layers": [descriptor("application/octet-stream", "b", "bin/tool")]}))


# ---- policy
FULL_POLICY = {
    "name": "production-gate", "repositories": ["health/*"], "stages": ["staging", "production"],
    "signatures": {"keys": ["k-a", "k-b", "k-c"], "threshold": "2 of 3"},
    "attestations": [{"predicate_type": "https://slsa.dev/provenance/v1", "keys": ["builder"]}],
    "provenance": {"builders": ["https://ci.example/builder"], "source_repositories": ["https://git.example/health/*"],
                   "dataset_digests_registered": True, "subjects_match_files": True,
                   "commit": {"branches": ["main", "release/*"], "signed": True,
                              "signers": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAID+tFRfiGCNqcrOp9LZbmxBHRPWtnpFLdScK0B7Y4/y5 ci@example.org"]}},
    "scan": {"max_severity": "low"},
    "evaluation": {"spec_digest": "sha256:" + "0" * 63 + "1",
                   "thresholds": {"accuracy": {"min": 0.9}, "latency_ms": {"max": 120}},
                   "max_regression_vs_current": {"accuracy": 0.01}},
    "residency": {"store": ["eu-*"], "pull": ["eu-*", "site-berlin"], "export": [], "classification": "restricted"},
    "freshness": {"max_age_days": 30},
}


def policies():
    put("policy", "full", json.dumps(FULL_POLICY, indent=1))
    put("policy", "minimal", '{"name":"n","repositories":["*"]}')
    put("policy", "threshold_number", dumps({"name": "t", "repositories": ["a/*", "b"],
                                              "signatures": {"roles": ["release"], "threshold": 1},
                                              "scan": {"max_severity": "critical"}}))


# ---- signed documents (dsse target: the first byte picks the parser)
def b64(data):
    return base64.b64encode(data).decode()


def statement(subject_name, sha, predicate_type, predicate):
    return dumps({"_type": "https://in-toto.io/Statement/v1",
                  "subject": [{"name": subject_name, "digest": {"sha256": sha}}],
                  "predicateType": predicate_type, "predicate": predicate})


PROVENANCE = {
    "buildDefinition": {"buildType": "https://sigil.dev/train/v1", "externalParameters": {"epochs": 3},
                        "internalParameters": {"seed": 1},
                        "resolvedDependencies": [{"uri": "git+https://git.example/health/x",
                                                  "digest": {"gitCommit": "a" * 40}},
                                                 {"name": "data", "digest": {"sha256": "b" * 64}}]},
    "runDetails": {"builder": {"id": "https://ci.example/builder", "version": {"ci": "1"}},
                   "metadata": {"invocationId": "run-1", "startedOn": "2026-01-01T00:00:00Z",
                                "finishedOn": "2026-01-01T01:00:00Z"},
                   "byproducts": [{"name": "log", "content": b64(b"ok")}]}}

VSA = {"verifier": {"id": "https://sigil.example/sigild", "version": {"sigil": "1"}},
       "timeVerified": "2026-01-02T03:04:05Z", "resourceUri": "sigil://health/x@sha256:" + "c" * 64,
       "policy": {"uri": "sigil://policies/gate", "digest": {"sha256": "d" * 64}},
       "inputAttestations": [{"uri": "sigil://att/1", "digest": {"sha256": "e" * 64}}],
       "verificationResult": "PASSED", "verifiedLevels": ["SLSA_BUILD_LEVEL_2", "SIGIL_STAGE_PRODUCTION"],
       "dependencyLevels": {"SLSA_BUILD_LEVEL_1": 1}, "slsaVersion": "1.0"}


def model_statement(method="files"):
    # The dsse target's model: one file "w.bin" holding "fuzz".
    file_hash = hashlib.sha256(b"fuzz").hexdigest()
    if method == "files":
        resources = [{"name": "w.bin", "algorithm": "sha256", "digest": file_hash}]
        ser = {"method": "files", "hash_type": "sha256", "allow_symlinks": False}
    else:
        resources = [{"name": "w.bin:0:4", "algorithm": "sha256-sharded-1000", "digest": file_hash}]
        ser = {"method": "shards", "hash_type": "sha256", "allow_symlinks": False, "shard_size": 1000}
    root = hashlib.sha256(bytes.fromhex(resources[0]["digest"])).hexdigest()
    return statement("model", root, "https://model_signing/signature/v1.0",
                     {"serialization": ser, "resources": resources})


def signed_documents():
    stmt = statement("model.safetensors", "f" * 64, "https://slsa.dev/provenance/v1", PROVENANCE)
    env = {"payloadType": "application/vnd.in-toto+json", "payload": b64(stmt.encode()),
           "signatures": [{"keyid": "k1", "sig": b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")}, {"sig": "AAAA"}]}
    put("dsse", "0_envelope", b"\x00" + dumps(env).encode())
    put("dsse", "1_statement", b"\x01" + stmt.encode())
    put("dsse", "2_provenance", b"\x02" + dumps(PROVENANCE).encode())
    put("dsse", "3_vsa", b"\x03" + dumps(VSA).encode())
    bundle = {"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
              "verificationMaterial": {"publicKey": {"hint": ""}, "tlogEntries": []},
              "dsseEnvelope": {"payloadType": "application/vnd.in-toto+json",
                               "payload": b64(model_statement().encode()),
                               "signatures": [{"sig": b64(b"\x30\x06\x02\x01\x01\x02\x01\x01")}]}}
    put("dsse", "4_bundle", b"\x04" + json.dumps(bundle, indent=2).encode())
    put("dsse", "5_model_files", b"\x05" + model_statement("files").encode())
    put("dsse", "5_model_shards", b"\x05" + model_statement("shards").encode())
    put("dsse", "6_timestamp", b"\x062026-12-01T18:50:00Z")
    put("dsse", "7_base64", b"\x07" + b64(b"sigil fuzz seed").encode())
    key = ("-----BEGIN PUBLIC KEY-----\n"
           "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqFLW5Ac3zMDYNv1Q8yVl3ZbZ5Yq1\n"
           "hJpKh3Yh0b4bF4q4l0yq0ZQm9sN7u8YkqRr3cQvFj2sXbY5l4N2c8pQm3A==\n"
           "-----END PUBLIC KEY-----\n")
    put("dsse", "8_pem", b"\x08" + key.encode())
    put("dsse", "9_trust_store", b"\x09" + dumps({"keys": [{"id": "0" * 64, "algorithm": "ecdsa-p256-sha256",
                                                            "public_key": key, "name": "ci",
                                                            "roles": ["builder"], "repositories": ["health/*"]}]}).encode())


# ---- checkpoints and proofs (checkpoint target: the first byte picks)
def checkpoints():
    root = b64(hashlib.sha256(b"root").digest())
    body = "fuzz.example/log\n37\n" + root + "\n"
    put("checkpoint", "0_body", b"\x00" + body.encode())
    put("checkpoint", "0_body_ext", b"\x00" + (body + "timestamp 1700000000\n").encode())
    sig = b64(b"\x01\x02\x03\x04" + b"\x00" * 64)
    note = body + "\n\u2014 fuzz.example/log " + sig + "\n\u2014 other.example " + sig + "\n"
    put("checkpoint", "1_note", b"\x01" + note.encode())
    put("checkpoint", "2_signed_body", b"\x02" + body.encode())
    put("checkpoint", "3_verifier_key", b"\x03" + ("fuzz.example/log+01020304+" + b64(b"\x01" + b"\x11" * 32)).encode())
    put("checkpoint", "4_inclusion", bytes([4, 5, 37, 0]) + hashlib.sha256(b"n").digest() * 6)
    put("checkpoint", "4_consistency", bytes([4, 12, 37, 1]) + hashlib.sha256(b"n").digest() * 4)
    put("checkpoint", "5_real", bytes([5, 3, 30, 7, 1]))
    put("checkpoint", "6_wild", b"\x06" + struct.pack(">QQ", 5, 2**63) + hashlib.sha256(b"x").digest() * 3)


# ---- headers
def ranges():
    for i, (size, header) in enumerate([(1000, "bytes=0-99"), (1000, "bytes=-200"), (1000, "bytes=900-"),
                                        (10, "bytes 0-4/10"), (1 << 40, " bytes = 5 - 6 "), (0, "bytes=0-0")]):
        prefix = struct.pack(">Q", size if size < 1000 else size | (1 << 62))
        put("range", "r%d" % i, prefix + header.encode())


# ---- bundle tar
def tar_header(name, size, typeflag=b"0", gnu=False):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108] = b"0000644\x00"
    h[108:116] = b"0000000\x00"
    h[116:124] = b"0000000\x00"
    h[124:136] = ("%011o" % size).encode() + b"\x00"
    h[136:148] = b"00000000000\x00"
    h[156:157] = typeflag
    h[257:265] = b"ustar  \x00" if gnu else b"ustar\x0000"
    h[148:156] = b"        "
    h[148:156] = ("%06o" % sum(h)).encode() + b"\x00 "
    return bytes(h)


def tar(entries, gnu=False):
    out = b""
    for name, data, typeflag in entries:
        out += tar_header(name, len(data), typeflag, gnu) + data + b"\x00" * ((512 - len(data) % 512) % 512)
    return out + b"\x00" * 1024


def bundle_tars():
    index = dumps({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                                      "digest": digest("plan"), "size": 4,
                                                      "artifactType": "application/vnd.sigil.bundle.v1+json"}]})
    # The first byte: odd, the harness fixes header checksums; even, it does not.
    put("bundle_tar", "oci_layout", b"\x00" + tar([("oci-layout", b'{"imageLayoutVersion":"1.0.0"}', b"0"),
                                         ("index.json", index.encode(), b"0"),
                                         ("blobs/", b"", b"5"),
                                         ("blobs/sha256/" + digest("plan")[7:], b"plan", b"0")]))
    put("bundle_tar", "gnu_empty_file", b"\x01" + tar([("a", b"", b"0"), ("b/c", b"x" * 700, b"\x00")], gnu=True))


def bundle_plans():
    m = digest("manifest")
    put("bundle_plan", "plan", json.dumps({
        "schema": 1, "origin": "sigil/train.example", "site": "train", "region": "eu-west", "to_region": "eu-west",
        "created": "2026-12-01T00:00:00Z",
        "checkpoint": "sigil/train.example\n3\n" + b64(hashlib.sha256(b"r").digest()) + "\n\n\u2014 sigil/train.example AAAA\n",
        "versions": [{"repository": "health/triage-llm", "version": "1.4.0", "digest": m,
                      "labels": {"team": "nlp"}, "blobs": [m, digest("w")]}],
        "attestations": [{"repository": "health/triage-llm", "version_digest": m, "content_digest": digest("att"),
                          "predicate_type": "https://slsa.dev/provenance/v1", "log_index": 2, "leaf": "{}",
                          "inclusion": [hashlib.sha256(b"a").hexdigest(), hashlib.sha256(b"b").hexdigest()]}],
        "aliases": [{"repository": "health/triage-llm", "alias": "production", "version": "1.4.0", "digest": m,
                     "vsa": digest("vsa")}],
        "blobs": [{"digest": m, "size": 8}, {"digest": digest("w"), "size": 1}, {"digest": digest("att"), "size": 3}],
        "omitted": [digest("old")], "notes": ["alias staging exported as its version only"]}, indent=1))
    put("bundle_plan", "empty", dumps({"schema": 1, "origin": "o", "checkpoint": "", "versions": [],
                                       "attestations": [], "aliases": [], "blobs": []}))


def main():
    shutil.rmtree(os.path.join(HERE, "corpus"), ignore_errors=True)
    pickles(); zips(); safetensors(); gguf(); npys(); manifests(); policies()
    signed_documents(); checkpoints(); ranges(); bundle_tars(); bundle_plans()


if __name__ == "__main__":
    main()
