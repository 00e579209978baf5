#!/usr/bin/python3
"""check_torch.py — the oracle half of empo's PyTorch parity test.

    /usr/bin/python3 check_torch.py DIR

reads DIR/manifest.jsonl written by parity_gen (see parity_gen.h), rebuilds
every case in PyTorch in float64 from the same f32 inputs (each input is its
contiguous base tensor plus the chain of view ops empo applied), computes the
op, loss = sum_k sum(out_k * W_k) and the gradients of the base tensors, and
compares: rel err = ||empo - ref||_2 / ||ref||_2 <= 1e-5 for float outputs
and gradients (max |empo - ref| when ref is all zeros), exact equality for
integer outputs. Prints one line per case and "parity: N cases, M failed";
exits non-zero on any failure, on a case empo could not run or skipped (an op
missing from libempo), or on an empty or missing manifest.
"""
import json
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

TOL = 1e-5
torch.set_num_threads(2)
f64 = torch.float64


# ---- references for the ops that PyTorch has no single function for ----

def rmsnorm(x, w, eps):
    return x * torch.rsqrt((x * x).mean(-1, keepdim=True) + eps) * w


def rope(x, positions, offset, theta):
    """Hugging Face's Qwen2/Llama rotary embedding, half-rotation layout: the
    angles are pos * inv_freq computed in float32 exactly as HF does; the
    rotation itself is in float64."""
    B, H, T, Dh = x.shape
    if positions is None:
        pos = (torch.arange(T) + offset).expand(B, T)
    else:
        pos = positions.expand(B, T)
    inv_freq = 1.0 / (theta ** (torch.arange(0, Dh, 2, dtype=torch.int64).float() / Dh))
    angle = (pos.float()[:, :, None] * inv_freq[None, None, :]).to(f64)   # [B, T, Dh/2], rounded in f32
    cos, sin = angle.cos()[:, None], angle.sin()[:, None]
    x1, x2 = x[..., : Dh // 2], x[..., Dh // 2:]
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


def attention(q, k, v, causal, scale, key_mask):
    """Softmax attention with KV heads repeated Hq / Hkv times; causal query t
    sees keys s <= t + S - T; hidden keys get -inf; a query that sees nothing
    gets a zero row (and no gradient)."""
    B, Hq, T, Dh = q.shape
    Hkv, S = k.shape[1], k.shape[2]
    k = k.repeat_interleave(Hq // Hkv, dim=1)
    v = v.repeat_interleave(Hq // Hkv, dim=1)
    if scale <= 0:
        scale = 1.0 / math.sqrt(Dh)
    scores = (q @ k.transpose(-1, -2)) * scale                           # [B, Hq, T, S]
    visible = torch.ones(B, 1, T, S, dtype=torch.bool)
    if causal:
        visible = visible & (torch.arange(S)[None, :] <= torch.arange(T)[:, None] + (S - T))
    if key_mask is not None:
        visible = visible & (key_mask != 0)[:, None, None, :]
    any_visible = visible.any(-1, keepdim=True)
    scores = scores.masked_fill(~visible, -math.inf)
    scores = torch.where(any_visible, scores, torch.zeros_like(scores))  # keeps softmax finite
    p = torch.softmax(scores, dim=-1) * visible
    return p @ v


def logprob_entropy(logits, ids):
    """logp = log_softmax(logits)[ids], entropy = -sum p log p, where banned
    (-inf) logits count as p = 0."""
    lsm = torch.log_softmax(logits, dim=-1)
    logp = lsm.gather(1, ids[:, None])[:, 0]
    p = lsm.exp()
    ent = -(p * torch.where(p > 0, lsm, torch.zeros_like(lsm))).sum(-1)
    return logp, ent


def view_op(name, p, x):
    if name in ("reshape", "view"):
        return x.reshape(p["shape"])
    if name == "expand":
        return x.expand(*p["shape"])
    if name == "permute":
        return x.permute(*p["dims"])
    if name == "contiguous":
        return x.contiguous()
    if name == "clone":
        return x.clone()
    if name == "transpose":
        return x.transpose(p["dim"], p["dim1"])
    if name == "narrow":
        return x.narrow(p["dim"], p["start"], p["length"])
    if name == "slice":
        idx = [slice(None)] * x.dim()
        idx[p["dim"]] = slice(p["start"], p["stop"], p["step"])
        return x[tuple(idx)]
    if name == "select":
        return x.select(p["dim"], p["index"])
    if name == "unsqueeze":
        return x.unsqueeze(p["dim"])
    if name == "squeeze":
        return x.squeeze(p["dim"])
    raise KeyError(name)


UNARY = {
    "neg": torch.neg, "exp": torch.exp, "log": torch.log, "sqrt": torch.sqrt, "rsqrt": torch.rsqrt,
    "tanh": torch.tanh, "sigmoid": torch.sigmoid, "silu": F.silu, "relu": torch.relu, "abs": torch.abs,
}
BINARY = {
    "add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div, "pow": torch.pow,
    "maximum": torch.maximum, "minimum": torch.minimum,
}
COMPARE = {"eq": torch.eq, "lt": torch.lt, "gt": torch.gt}
SCALAR = {
    "add_scalar": lambda a, s: a + s, "mul_scalar": lambda a, s: a * s, "pow_scalar": lambda a, s: a ** s,
    "rsub_scalar": lambda a, s: s - a, "rdiv_scalar": lambda a, s: s / a,
}
VIEWS = {"reshape", "view", "expand", "permute", "contiguous", "clone", "transpose", "narrow", "slice",
         "select", "unsqueeze", "squeeze"}


def reference(op, p, x):
    """The outputs of `op` (a list) on inputs x (a dict by name)."""
    if op in UNARY:
        return [UNARY[op](x["a"])]
    if op == "gelu":
        return [F.gelu(x["a"], approximate="tanh" if p["approximate"] else "none")]
    if op in BINARY:
        return [BINARY[op](x["a"], x["b"])]
    if op in COMPARE:
        return [COMPARE[op](x["a"], x["b"]).to(torch.int64)]
    if op in SCALAR:
        return [SCALAR[op](x["a"], p["s"])]
    if op == "clamp":
        return [torch.clamp(x["a"], p["lo"], p["hi"])]
    if op == "sum":
        return [x["x"].sum()]
    if op == "mean":
        return [x["x"].mean()]
    if op == "sum_dim":
        return [x["x"].sum(p["dim"], keepdim=bool(p["keepdim"]))]
    if op == "mean_dim":
        return [x["x"].mean(p["dim"], keepdim=bool(p["keepdim"]))]
    if op == "max_dim":
        v, i = torch.max(x["x"], p["dim"], keepdim=bool(p["keepdim"]))
        return [v, i]
    if op == "argmax":
        return [torch.argmax(x["x"], p["dim"], keepdim=bool(p["keepdim"]))]
    if op == "max":
        return [x["x"].max()]
    if op == "softmax":
        return [torch.softmax(x["x"], p["dim"])]
    if op == "log_softmax":
        return [torch.log_softmax(x["x"], p["dim"])]
    if op == "matmul":
        return [torch.matmul(x["a"], x["b"])]
    if op == "linear":
        return [F.linear(x["x"], x["w"], x.get("bias"))]
    if op in VIEWS:
        return [view_op(op, p, x["x"])]
    if op == "embedding":
        return [F.embedding(x["ids"], x["weight"])]
    if op == "gather":
        return [torch.gather(x["x"], p["dim"], x["index"])]
    if op == "index_select":
        return [torch.index_select(x["x"], p["dim"], x["index"])]
    if op == "cat":
        return [torch.cat([x[n] for n in sorted(k for k in x if k.startswith("x"))], p["dim"])]
    if op == "where":
        return [torch.where(x["cond"] != 0, x["a"], x["b"])]
    if op == "masked_fill":
        return [x["x"].masked_fill(x["mask"] != 0, p["value"])]
    if op == "rmsnorm":
        return [rmsnorm(x["x"], x["weight"], p["eps"])]
    if op == "swiglu":
        return [F.silu(x["gate"]) * x["up"]]
    if op == "rope":
        return [rope(x["x"], x.get("positions"), p["offset"], p["theta"])]
    if op == "attention":
        return [attention(x["q"], x["k"], x["v"], p["causal"], p["scale"], x.get("key_mask"))]
    if op == "logprob_entropy":
        logp, ent = logprob_entropy(x["logits"], x["ids"])
        return [logp, ent] if p["entropy"] else [logp]
    raise KeyError("no reference for op " + op)


# ---- reading a case ----

def read_array(blob, rec, key, shape):
    n = int(np.prod(shape, dtype=np.int64))
    dt = np.float32 if rec["dtype"] == "f32" else np.int64
    return np.frombuffer(blob, dtype=dt, count=n, offset=rec[key]).reshape(shape)


def apply_chain(t, chain):
    for v in chain:
        if v[0] == "transpose":
            t = t.transpose(v[1], v[2])
        elif v[0] == "narrow":
            t = t.narrow(v[1], v[2], v[3])
        elif v[0] == "slice":
            idx = [slice(None)] * t.dim()
            idx[v[1]] = slice(v[2], v[3], v[4])
            t = t[tuple(idx)]
        elif v[0] == "expand":
            t = t.expand(*v[1])
        else:
            raise KeyError(v[0])
    return t


def rel_err(got, ref):
    """||got - ref|| / ||ref||, or max |got - ref| when ref is all zeros."""
    got = np.asarray(got, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if got.shape != ref.shape:
        return math.inf
    if got.size == 0:
        return 0.0
    diff = got - ref
    nref = np.linalg.norm(ref)
    err = np.linalg.norm(diff) / nref if nref > 0 else np.abs(diff).max()
    return float(err) if np.isfinite(err) else math.inf


def describe(case):
    parts = []
    for r in case["inputs"]:
        shape = list(r["base_shape"])
        if r["view"]:
            shape = list(apply_chain(torch.empty(shape), r["view"]).shape)
        tag = "~" + "+".join(v[0] for v in r["view"]) if r["view"] else ""
        dt = "" if r["empo_dtype"] == "f32" else ":" + r["empo_dtype"]
        parts.append("%s[%s]%s%s" % (r["name"], ",".join(map(str, shape)), dt, tag))
    params = ",".join("%s=%s" % (k, v) for k, v in case["params"].items())
    return " ".join(parts) + (" {" + params.replace(" ", "") + "}" if params else "")


def check_case(case, directory):
    """Returns (ok, out_err, grad_err, note)."""
    if case.get("error"):
        return False, math.nan, math.nan, "empo failed: " + case["error"]
    with open(os.path.join(directory, case["file"]), "rb") as f:
        blob = f.read()
    bases, x = [], {}
    for r in case["inputs"]:
        arr = read_array(blob, r, "offset", r["base_shape"])
        if r["dtype"] == "f32":
            t = torch.tensor(arr.astype(np.float64), dtype=f64, requires_grad=r["grad"])
        else:
            t = torch.tensor(arr, dtype=torch.int64)
        bases.append(t)
        x[r["name"]] = apply_chain(t, r["view"])
    if case["params"].get("b_is_a"):
        x["b"] = x["a"]
    if case["params"].get("b_is_at"):
        x["b"] = x["a"].transpose(-1, -2)
    refs = reference(case["op"], case["params"], x)
    outs = case["outputs"]
    if len(refs) != len(outs):
        return False, math.nan, math.nan, "empo gave %d outputs, reference %d" % (len(outs), len(refs))

    out_err, note, ok = 0.0, "", True
    loss = None
    for rec, ref in zip(outs, refs):
        got = read_array(blob, rec, "offset", rec["shape"])
        if list(got.shape) != list(ref.shape):
            return False, math.nan, math.nan, "shape %s, reference %s" % (list(got.shape), list(ref.shape))
        if rec["dtype"] == "f32":
            if not ref.is_floating_point():
                return False, math.nan, math.nan, "empo gave a float output, reference an integer one"
            out_err = max(out_err, rel_err(got, ref.detach().numpy()))
            if ref.requires_grad:
                w = torch.tensor(read_array(blob, rec, "w_offset", rec["shape"]).astype(np.float64))
                term = (ref * w).sum()
                loss = term if loss is None else loss + term
        else:
            if ref.is_floating_point():
                return False, math.nan, math.nan, "empo gave an integer output, reference a float one"
            if not np.array_equal(got, ref.numpy()):
                ok = False
                note = "integer output differs at %d places" % int((got != ref.numpy()).sum())
    ok = ok and out_err <= TOL

    grad_err = 0.0
    leaves = [(r, t) for r, t in zip(case["inputs"], bases) if r["grad"]]
    if leaves:
        if loss is not None:
            grads = torch.autograd.grad(loss, [t for _, t in leaves], allow_unused=True)
        else:
            grads = [None] * len(leaves)
        for (r, t), g in zip(leaves, grads):
            ref = np.zeros(t.shape) if g is None else g.numpy()
            got = read_array(blob, {"dtype": "f32", "offset": r["grad_offset"]}, "offset", r["base_shape"]) \
                if "grad_offset" in r else np.zeros(t.shape)
            e = rel_err(got, ref)
            if e > grad_err or math.isinf(e):
                grad_err = e
                if not e <= TOL:
                    note = note or "grad of %s" % r["name"]
    ok = ok and grad_err <= TOL
    return ok, out_err, grad_err, note


def family(op):
    groups = {
        "binary": set(BINARY), "compare": set(COMPARE), "scalar": set(SCALAR) | {"clamp"},
        "unary": set(UNARY) | {"gelu"}, "reduce": {"sum", "mean", "sum_dim", "mean_dim", "max_dim", "argmax", "max"},
        "softmax": {"softmax", "log_softmax"}, "linalg": {"matmul", "linear"}, "views": VIEWS,
        "index": {"embedding", "gather", "index_select", "cat", "where", "masked_fill"},
    }
    for name, ops in groups.items():
        if op in ops:
            return name
    return op


def main():
    if len(sys.argv) != 2:
        print("usage: check_torch.py DIR", file=sys.stderr)
        return 2
    directory = sys.argv[1]
    path = os.path.join(directory, "manifest.jsonl")
    if not os.path.exists(path):
        print("parity: no manifest at %s" % path)
        return 1
    cases = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            try:
                if line.strip():
                    cases.append(json.loads(line))
            except ValueError as e:   # parity_gen died while writing
                print("parity: manifest line %d unreadable (%s)" % (lineno, e))
                return 1
    n = failed = skipped = 0
    worst = {}
    for case in cases:
        if case.get("skipped"):
            print("%4d %-16s SKIPPED (not built)" % (case["id"], case["op"]))
            skipped += 1
            continue
        n += 1
        try:
            ok, oe, ge, note = check_case(case, directory)
        except Exception as e:   # a reference that cannot run is a failed case, not a crash
            ok, oe, ge, note = False, math.nan, math.nan, "reference raised %s: %s" % (type(e).__name__, e)
        failed += not ok
        fam = family(case["op"])
        w = worst.setdefault(fam, [0.0, 0.0, 0])
        w[0] = max(w[0], oe) if not math.isnan(oe) else w[0]
        w[1] = max(w[1], ge) if not math.isnan(ge) else w[1]
        w[2] += 1
        print("%4d %-16s %-56s out %.1e grad %.1e %s%s" % (
            case["id"], case["op"], describe(case) if "inputs" in case else "", oe, ge,
            "ok" if ok else "FAILED", " (" + note + ")" if note else ""))
    print("worst relative errors by family:")
    for fam, (oe, ge, k) in sorted(worst.items()):
        print("  %-16s %3d cases  out %.1e  grad %.1e" % (fam, k, oe, ge))
    allow_skip = os.environ.get("EMPO_PARITY_ALLOW_SKIP") == "1"
    print("parity: %d cases, %d failed%s" % (n, failed, ", %d ops skipped (not built)" % skipped if skipped else ""))
    if n == 0 or failed or (skipped and not allow_skip):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
