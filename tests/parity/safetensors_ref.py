"""safetensors_ref.py — an independent safetensors reader and writer (numpy + torch), the oracle
of tests/parity/test_safetensors_torch.lua.

Written for this test from the format's description; there is no
`safetensors` Python package here. The reader is strict, as Hugging Face's
own: the header starts with '{', is UTF-8 JSON, and the tensors' byte
ranges tile the data area exactly (from 0, no gaps, no overlap, nothing
after). On top of that it checks what empo promises of the files it writes:
header keys sorted (__metadata__ first), the data area starting at a
multiple of 8 and every tensor aligned to its element size.

Usage:
  safetensors_ref.py write FILE            deterministic tensors (expected_tensors) + random bits
  safetensors_ref.py write_sharded DIR     the same, as two shards and an index.json
  safetensors_ref.py check FILE            FILE (written by empo) holds expected_tensors
  safetensors_ref.py check_sharded DIR     DIR/model.safetensors.index.json and its shards do
  safetensors_ref.py same_bits A B         every tensor of A is in B with the same bytes
"""
import json
import os
import struct
import sys

import numpy as np
import torch

SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2, "I32": 4, "U32": 4,
         "F32": 4, "F64": 8, "I64": 8, "U64": 8}
TORCH = {"F32": torch.float32, "F64": torch.float64, "BF16": torch.bfloat16, "F16": torch.float16,
         "I32": torch.int32, "I64": torch.int64, "U8": torch.uint8, "BOOL": torch.bool, "I16": torch.int16,
         "I8": torch.int8}
NAME = {v: k for k, v in TORCH.items()}
# one integer view per element size, to compare bit patterns
BITS = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}


def formula(n, dtype):
    """Values every dtype holds exactly: k/8 for floats, small ints, 0/1 for U8/BOOL."""
    i = np.arange(n, dtype=np.int64)
    v = (i * 37) % 101 - 50
    if dtype in ("U8", "BOOL"):
        return torch.from_numpy(i % 2).to(TORCH[dtype])
    if dtype.startswith("F") or dtype == "BF16":
        return torch.from_numpy(v.astype(np.float64) / 8).to(torch.float32).to(TORCH[dtype])
    return torch.from_numpy(v).to(TORCH[dtype])


# special values, rounded to each float dtype through float32 (as empo does)
SPECIAL = [float("inf"), float("-inf"), -0.0, 1 / 3, 2 / 3, 1e-3, 65519.0, 1e-8, 3.0e38]


def expected_tensors():
    """name -> tensor; the same list is built in test_safetensors_torch.lua."""
    shapes = {"F32": [3, 4, 5], "F64": [7], "BF16": [2, 3], "F16": [4, 2], "I32": [5], "I64": [2, 2], "U8": [6]}
    out = {}
    for dt, shape in shapes.items():
        n = int(np.prod(shape))
        out["t." + dt.lower()] = formula(n, dt).reshape(shape)
    for dt in ("F32", "F64", "BF16", "F16"):
        out["special." + dt.lower()] = torch.tensor(SPECIAL, dtype=torch.float32).to(TORCH[dt])
    out["scalar"] = torch.tensor(2.5, dtype=torch.float32)
    out["empty"] = torch.zeros(0, 3, dtype=torch.float32)
    return out


def bits(t):
    """The tensor's bytes as integers of its element size (bool as uint8)."""
    if t.dtype == torch.bool:
        return t.to(torch.uint8)
    return t.contiguous().view(BITS[t.element_size()])


def read(path, strict_empo=True):
    """name -> tensor, metadata; raises AssertionError on any format fault."""
    with open(path, "rb") as f:
        data = f.read()
    assert len(data) >= 8, f"{path}: too short"
    (n,) = struct.unpack("<Q", data[:8])
    assert n <= 100_000_000 and 8 + n <= len(data), f"{path}: header size {n}"
    text = data[8:8 + n]
    assert text[:1] == b"{", f"{path}: header does not start with '{{'"
    header = json.loads(text.decode("utf-8"))
    keys = list(header)
    meta = header.pop("__metadata__", {})
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), f"{path}: metadata"
    if strict_empo:
        assert (8 + n) % 8 == 0, f"{path}: data area at {8 + n}, not a multiple of 8"
        assert text.rstrip(b" ").endswith(b"}"), f"{path}: header padding is not spaces"
        names = [k for k in keys if k != "__metadata__"]
        assert names == sorted(names, key=lambda s: s.encode()), f"{path}: header keys not sorted"
        assert "__metadata__" not in keys or keys[0] == "__metadata__", f"{path}: __metadata__ not first"
    base, area = 8 + n, len(data) - 8 - n
    at = 0
    out = {}
    for name, info in sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"])):
        dt, shape, (b, e) = info["dtype"], info["shape"], info["data_offsets"]
        assert b == at, f"{path}: tensor '{name}': begins at {b}, expected {at} (gap or overlap)"
        size = SIZES[dt] * int(np.prod(shape, dtype=np.int64))
        assert e - b == size, f"{path}: tensor '{name}': {e - b} bytes for shape {shape} {dt}"
        if strict_empo:
            assert (base + b) % SIZES[dt] == 0, f"{path}: tensor '{name}' is not aligned"
        raw = bytearray(data[base + b:base + e])
        if dt == "BOOL":
            t = torch.frombuffer(raw, dtype=torch.uint8).to(torch.bool) if size else torch.zeros(0, dtype=torch.bool)
        else:
            t = torch.frombuffer(raw, dtype=TORCH[dt]) if size else torch.zeros(0, dtype=TORCH[dt])
        out[name] = t.reshape(shape)
        at = e
    assert at == area, f"{path}: {area - at} bytes after the last tensor"
    return out, meta


def write(path, tensors, metadata=None):
    """Hugging Face's layout: data by dtype (widest first) then name, header
    keys in data order, __metadata__ first, padded to 8 with spaces."""
    order = sorted(tensors, key=lambda k: (-tensors[k].element_size(), k))
    header, blobs, at = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name in order:
        t = tensors[name].contiguous()
        raw = (t.to(torch.uint8) if t.dtype == torch.bool else t).view(BITS[t.element_size()]).numpy().tobytes()
        header[name] = {"dtype": NAME[t.dtype], "shape": list(t.shape), "data_offsets": [at, at + len(raw)]}
        blobs.append(raw)
        at += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-(8 + len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(blobs))


def python_tensors():
    """What `write` puts in a file: expected_tensors, random bit patterns of
    every dtype (NaN payloads included), a BOOL and an I16 tensor."""
    t = expected_tensors()
    g = torch.Generator().manual_seed(1234)
    for dt in ("F32", "F64", "BF16", "F16", "I32", "I64"):
        size = SIZES[dt]
        r = torch.randint(-2 ** (8 * min(size, 4) - 1), 2 ** (8 * min(size, 4) - 1), (33,), generator=g,
                          dtype=torch.int64)
        if size == 8:
            r = r * 2 ** 31 + torch.randint(0, 2 ** 31, (33,), generator=g, dtype=torch.int64)
        t["rand." + dt.lower()] = r.to(BITS[size]).view(TORCH[dt])
    t["rand.u8"] = torch.randint(0, 256, (5, 7), generator=g, dtype=torch.int64).to(torch.uint8)
    t["mask"] = torch.tensor([True, False, True, True])
    t["i16"] = torch.tensor([-2, 300, 7, -32768], dtype=torch.int16)
    return t


def compare(path, got, want):
    bad = []
    for name, w in want.items():
        g = got.get(name)
        if g is None:
            bad.append(f"{name}: missing")
        elif g.dtype != w.dtype or list(g.shape) != list(w.shape):
            bad.append(f"{name}: {g.dtype} {list(g.shape)} vs {w.dtype} {list(w.shape)}")
        elif not torch.equal(bits(g), bits(w)):
            bad.append(f"{name}: values differ: {g.flatten()[:8].tolist()} vs {w.flatten()[:8].tolist()}")
    for msg in bad:
        print(f"{path}: {msg}", file=sys.stderr)
    return not bad


def main():
    mode, path = sys.argv[1], sys.argv[2]
    if mode == "write":
        write(path, python_tensors(), {"format": "pt", "source": "python"})
        return 0
    if mode == "write_sharded":
        os.makedirs(path, exist_ok=True)
        t = python_tensors()
        names = sorted(t)
        half = {0: names[:len(names) // 2], 1: names[len(names) // 2:]}
        weight_map = {}
        for s, part in half.items():
            fn = f"model-{s + 1:05d}-of-00002.safetensors"
            write(os.path.join(path, fn), {k: t[k] for k in part}, {"format": "pt"})
            weight_map.update({k: fn for k in part})
        total = sum(v.numel() * v.element_size() for v in t.values())
        with open(os.path.join(path, "model.safetensors.index.json"), "w") as f:
            json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2, sort_keys=True)
        return 0
    if mode == "check":
        got, meta = read(path)
        ok = compare(path, got, expected_tensors())
        if meta.get("format") != "pt" or meta.get("note") != "written by empo \u00fc":
            print(f"{path}: metadata {meta}", file=sys.stderr)
            ok = False
        return 0 if ok else 1
    if mode == "check_sharded":
        with open(os.path.join(path, "model.safetensors.index.json")) as f:
            index = json.load(f)
        got, total = {}, 0
        for name, fn in index["weight_map"].items():
            tensors, _ = read(os.path.join(path, fn))
            assert name in tensors, f"{fn} lacks {name}"
            got[name] = tensors[name]
            total += tensors[name].numel() * tensors[name].element_size()
        shards = set(index["weight_map"].values())
        ok = compare(path, got, expected_tensors()) and len(shards) > 1
        ok = ok and index["metadata"]["total_size"] == total
        return 0 if ok else 1
    if mode == "same_bits":
        a, _ = read(path, strict_empo=False)
        b, meta = read(sys.argv[3])
        a["i16"] = a["i16"].to(torch.int64)             # empo has no i16: it loads as i64
        a["mask"] = a["mask"].to(torch.uint8)           # and BOOL as u8
        ok = compare(sys.argv[3], b, a) and set(a) == set(b) and meta.get("source") == "python"
        return 0 if ok else 1
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
