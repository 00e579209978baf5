"""st_io.py — minimal safetensors reading and writing with numpy, for the test oracles.

Written for the tests from the format's description (8-byte little-endian
header length, a JSON header of name -> {dtype, shape, data_offsets}, then
the raw little-endian data). There is no `safetensors` Python package on
the machines these tests run on."""
import json
import struct

import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I32": np.int32,
          "I64": np.int64, "U8": np.uint8, "BOOL": np.bool_}


def bf16_to_f32(raw):
    return (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def read(path):
    """name -> numpy array (bf16 widened to float32), and the metadata."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        begin, end = info["data_offsets"]
        raw = data[base + begin:base + end]
        if info["dtype"] == "BF16":
            arr = bf16_to_f32(raw)
        else:
            arr = np.frombuffer(raw, dtype=DTYPES[info["dtype"]])
        out[name] = arr.reshape(info["shape"]).copy()
    return out, header.get("__metadata__", {})


def write(path, tensors, metadata=None):
    names = sorted(tensors)
    header, offset, blobs = {}, 0, []
    inverse = {np.dtype(v): k for k, v in DTYPES.items() if k != "BOOL"}
    for name in names:
        arr = np.ascontiguousarray(tensors[name])
        raw = arr.tobytes()
        header[name] = {"dtype": inverse[arr.dtype], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
        blobs.append(raw)
    if metadata:
        header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for raw in blobs:
            f.write(raw)
