#!/usr/bin/python3
"""The peer of bench/bench_heads.c: an independent PyTorch implementation of
every context / graph-reasoning head of segnas (issue 6), written from the
papers and from the construction segnas documents (include/segnas/nn.h,
include/segnas/models.h, src/models/context_head.c: the widths in terms of
the head's output width c), so that a `bench_heads dump` file can be loaded
and checked with the same weights.

  check FILE...   for each dump: verifies the construction (the same
                  parameter names with the same shapes), runs the head in
                  float64 (the reference) and float32 in eval mode (running
                  statistics) and in training mode (batch statistics, running
                  ones updated, then backward from the dumped upstream
                  gradient), and compares segnas's outputs, updated running
                  statistics and gradients with the float64 result. Error of
                  a tensor = max |segnas - ref| / max |ref| (the largest
                  element error in units of the tensor's scale); the
                  norm-wise ||segnas - ref|| / ||ref|| is printed too. Exit 1
                  if any error exceeds --tol (1e-4), 2 on a construction
                  mismatch or a missing tensor.

The heads (c = output width, q = max(1, c/4), h = max(1, c/2), K classes):
  aspp     DeepLabv3: image pooling (global mean, 1x1 conv-BN-ReLU,
           broadcast), 1x1 and three 3x3 atrous (rates 6, 12, 18 at output
           stride 16) conv-BN-ReLU, concat, 1x1 conv-BN-ReLU.
  ppm      PSPNet: adaptive average pooling to 1, 2, 3, 6 bins (PyTorch's
           AdaptiveAvgPool2d), 1x1 conv-BN-ReLU to q, bilinear upsampling
           with align_corners, concat [x, levels], 3x3 conv-BN-ReLU to c.
  glore    GloRe (Chen et al. 2019): X_s = state(x) (h channels), B =
           project(x) (q nodes), V = B^T X_s, Z = relu((V - A_g V) W_g),
           Y = BN(extend(B Z)) + residual.
  a2       A^2-Net (Chen et al. 2018): G = softmax_HW(theta(x))^T phi(x),
           Z = softmax_K(rho(x)) G, out(Z) + residual; q descriptors of q
           channels; theta without bias.
  gcu      Graph convolution units (Li & Gupta 2018) of 2, 4, 8, 32
           vertices, q channels each: Gaussian soft assignment, normalised
           mean residuals, A = Z Z^T, relu(A Z W_g), reprojection; concat
           [x, units], 1x1 conv to c.
  sgr      Symbolic graph reasoning (Liang et al. 2018), one node per class,
           D = E = q: voting softmax over nodes, H^ps = a^T X W_ps,
           H^g = relu(A^ B W_g) with B = relu(H^ps) and A^ = D^-1/2 A D^-1/2
           of the prior (rows without mass give zero rows), bilinear
           score (X W_sx)(H^g W_sh)^T, softmax over nodes, relu(a H^g W_sp)
           + residual.
  nonlocal Non-local, embedded Gaussian (Wang et al. 2018), h embedding and
           value channels: softmax_j(theta_i . phi_j) g_j, out(.) + residual.
Residual: + x when c_in == c, else + proj(x) (1x1 conv, no bias). Batch
norm: momentum 0.1, eps 1e-5, unbiased running variance (PyTorch's own).
1x1 convs are plain matrix products; 3x3 convs use 'SAME' padding.

Run with /usr/bin/python3 (Debian's python3-torch). No safetensors package is
needed: the format is read with json + struct.
"""
import argparse
import json
import math
import os
import struct
import sys

GCU_VERTICES = (2, 4, 8, 32)
PPM_BINS = (1, 2, 3, 6)


# ---- safetensors -------------------------------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = bytearray(raw[8 + n:])
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            sys.exit("heads_torch.py: %s: dtype %s (F32 expected)" % (name, e["dtype"]))
        b, en = e["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.float32, count=(en - b) // 4, offset=b) if en > b else torch.zeros(0)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


# ---- construction: names and shapes in segnas layouts (HWIO convs) ----------
class Spec:
    def __init__(self):
        self.items = {}  # name -> (shape, "w" learnable | "buf")

    def conv(self, name, cin, cout, k=1, bias=False):
        self.items[name + ".weight"] = ((k, k, cin, cout), "w")
        if bias:
            self.items[name + ".bias"] = ((cout,), "w")

    def bn(self, name, c):
        for leaf in ("gamma", "beta"):
            self.items["%s.%s" % (name, leaf)] = ((c,), "w")
        for leaf in ("running_mean", "running_var"):
            self.items["%s.%s" % (name, leaf)] = ((c,), "buf")

    def conv_bn(self, name, cin, cout, k=1):
        self.conv(name + ".conv", cin, cout, k)
        self.bn(name + ".bn", cout)

    def matrix(self, name, rows, cols, kind="w"):
        self.items[name] = ((rows, cols), kind)


def widths(c):
    return max(1, c // 4), max(1, c // 2)


def build_spec(head, ci, co, classes):
    s = Spec()
    q, h = widths(co)
    if head == "aspp":
        s.conv_bn("aspp.image_pooling", ci, co)
        s.conv_bn("aspp.aspp0", ci, co)
        for i in range(1, 4):
            s.conv_bn("aspp.aspp%d" % i, ci, co, 3)
        s.conv_bn("aspp.concat_projection", 5 * co, co)
        return s
    if head == "ppm":
        for b in PPM_BINS:
            s.conv_bn("ppm.bins%d" % b, ci, q)
        s.conv_bn("ppm.fuse", ci + len(PPM_BINS) * q, co, 3)
        return s
    if head == "glore":
        s.conv("glore.state", ci, h, bias=True)
        s.conv("glore.project", ci, q, bias=True)
        s.conv("glore.extend", h, co)
        s.bn("glore.bn", co)
        s.matrix("glore.adjacency", q, q)
        s.matrix("glore.graph_weight", h, h)
    elif head == "a2":
        s.conv("a2.phi", ci, q, bias=True)
        s.conv("a2.theta", ci, q)
        s.conv("a2.rho", ci, q, bias=True)
        s.conv("a2.out", q, co, bias=True)
    elif head == "gcu":
        for i, v in enumerate(GCU_VERTICES):
            s.matrix("gcu.unit%d.centres" % i, v, ci)
            s.matrix("gcu.unit%d.sigma" % i, v, ci)
            s.matrix("gcu.unit%d.graph_weight" % i, ci, q)
        s.conv("gcu.fuse", ci + len(GCU_VERTICES) * q, co, bias=True)
        return s  # no residual: the fuse conv sees x itself
    elif head == "sgr":
        s.conv("sgr.vote", ci, classes, bias=True)
        for name, r, c in (("w_ps", ci, q), ("w_g", q, q), ("w_sx", ci, q), ("w_sh", q, q), ("w_sp", q, co)):
            s.matrix("sgr." + name, r, c)
        s.matrix("sgr.adjacency", classes, classes, "buf")
    elif head == "nonlocal":
        s.conv("nonlocal.theta", ci, h, bias=True)
        s.conv("nonlocal.phi", ci, h, bias=True)
        s.conv("nonlocal.g", ci, h, bias=True)
        s.conv("nonlocal.out", h, co, bias=True)
    else:
        raise ValueError("unknown head " + head)
    if ci != co:
        s.conv(head + ".proj", ci, co)
    return s


# ---- the heads (NCHW maps; the graph parts in the {N, HW, C} matrix form) ----
class Head:
    def __init__(self, P, training):
        self.P, self.training = P, training

    def conv(self, name, x, k=1, dil=1):
        w = self.P[name + ".weight"].permute(3, 2, 0, 1)  # HWIO -> OIHW
        pad = (k - 1) * dil // 2  # 'SAME' for odd k, stride 1
        return F.conv2d(x, w, self.P.get(name + ".bias"), 1, pad, dil)

    def bn(self, name, x):
        P = self.P
        return F.batch_norm(x, P[name + ".running_mean"], P[name + ".running_var"], P[name + ".gamma"],
                            P[name + ".beta"], self.training, 0.1, 1e-5)

    def conv_bn_relu(self, name, x, k=1, dil=1):
        return F.relu(self.bn(name + ".bn", self.conv(name + ".conv", x, k, dil)))

    @staticmethod
    def rows(x):  # {N,C,H,W} -> {N,HW,C}
        return x.flatten(2).transpose(1, 2)

    @staticmethod
    def unrows(y, h, w):  # {N,HW,C} -> {N,C,H,W}
        return y.transpose(1, 2).reshape(y.shape[0], y.shape[2], h, w)

    def residual(self, head, x, y):
        return y + (self.conv(head + ".proj", x) if head + ".proj.weight" in self.P else x)

    def aspp(self, x, rates=(6, 12, 18)):
        H, W = x.shape[2:]
        pooled = self.conv_bn_relu("aspp.image_pooling", x.mean((2, 3), keepdim=True))
        parts = [pooled.expand(-1, -1, H, W), self.conv_bn_relu("aspp.aspp0", x)]
        parts += [self.conv_bn_relu("aspp.aspp%d" % (i + 1), x, 3, r) for i, r in enumerate(rates)]
        return self.conv_bn_relu("aspp.concat_projection", torch.cat(parts, 1))

    def ppm(self, x):
        H, W = x.shape[2:]
        parts = [x]
        for b in PPM_BINS:
            p = F.adaptive_avg_pool2d(x, (min(b, H), min(b, W)))
            p = self.conv_bn_relu("ppm.bins%d" % b, p)
            parts.append(F.interpolate(p, size=(H, W), mode="bilinear", align_corners=True))
        return F.relu(self.bn("ppm.fuse.bn", self.conv("ppm.fuse.conv", torch.cat(parts, 1), 3)))

    def glore(self, x):
        H, W = x.shape[2:]
        P = self.P
        xs = self.rows(self.conv("glore.state", x))    # {N,HW,S}
        b = self.rows(self.conv("glore.project", x))   # {N,HW,Nn}
        v = b.transpose(1, 2) @ xs                     # {N,Nn,S}: projection
        z = F.relu((v - P["glore.adjacency"] @ v) @ P["glore.graph_weight"])  # (I - A_g) V W_g
        y = self.unrows(b @ z, H, W)                   # reprojection
        return self.residual("glore", x, self.bn("glore.bn", self.conv("glore.extend", y)))

    def a2(self, x):
        H, W = x.shape[2:]
        feat = self.rows(self.conv("a2.phi", x))                     # {N,HW,cm}
        attn_g = torch.softmax(self.rows(self.conv("a2.theta", x)), 1)  # over HW
        g = attn_g.transpose(1, 2) @ feat                             # {N,K,cm} global descriptors
        attn_d = torch.softmax(self.rows(self.conv("a2.rho", x)), 2)  # over K
        z = self.unrows(attn_d @ g, H, W)
        return self.residual("a2", x, self.conv("a2.out", z))

    def gcu_unit(self, i, X):
        P = self.P
        w, s, wg = P["gcu.unit%d.centres" % i], P["gcu.unit%d.sigma" % i], P["gcu.unit%d.graph_weight" % i]
        r = (X[:, :, None, :] - w[None, None]) / s[None, None]  # {N,HW,V,C}
        q = torch.softmax(-0.5 * (r * r).sum(3), 2)            # {N,HW,V}  (Eq. 1)
        zp = (q[..., None] * r).sum(1) / q.sum(1)[..., None]   # {N,V,C}   (Eq. 2)
        z = zp / zp.norm(dim=2, keepdim=True)
        a = z @ z.transpose(1, 2)                              # cosine similarities
        zt = F.relu(a @ z @ wg)
        return q @ zt                                          # {N,HW,q}

    def gcu(self, x):
        H, W = x.shape[2:]
        X = self.rows(x)
        parts = [x] + [self.unrows(self.gcu_unit(i, X), H, W) for i in range(len(GCU_VERTICES))]
        return self.conv("gcu.fuse", torch.cat(parts, 1))

    def sgr(self, x, prior):
        H, W = x.shape[2:]
        P = self.P
        X = self.rows(x)
        d = prior.sum(1)
        inv = torch.where(d > 0, d.clamp(min=1e-300).rsqrt(), torch.zeros_like(d))
        adj = inv[:, None] * prior * inv[None, :]
        self.sgr_adjacency = adj
        vote = torch.softmax(self.rows(self.conv("sgr.vote", x)), 2)  # a_{x->n}, over nodes
        hps = (vote.transpose(1, 2) @ X) @ P["sgr.w_ps"]              # {N,M,D}
        hg = F.relu(adj @ F.relu(hps) @ P["sgr.w_g"])
        score = (X @ P["sgr.w_sx"]) @ (hg @ P["sgr.w_sh"]).transpose(1, 2)  # {N,HW,M}
        y = F.relu(torch.softmax(score, 2) @ (hg @ P["sgr.w_sp"]))
        return self.residual("sgr", x, self.unrows(y, H, W))

    def nonlocal_(self, x):
        H, W = x.shape[2:]
        q = self.rows(self.conv("nonlocal.theta", x))
        k = self.rows(self.conv("nonlocal.phi", x))
        v = self.rows(self.conv("nonlocal.g", x))
        y = self.unrows(torch.softmax(q @ k.transpose(1, 2), 2) @ v, H, W)
        return self.residual("nonlocal", x, self.conv("nonlocal.out", y))


def run_head(head, spec, tensors, dtype, training):
    """Returns {name: float64 tensor in segnas layouts}: out.<mode>, and in
    training mode grad.* and after.* too."""
    P = {}
    for name, (_, kind) in spec.items.items():
        t = tensors[name].to(dtype).clone()
        if kind == "w" and training:
            t.requires_grad_(True)
        P[name] = t
    x = tensors["input.x"].permute(0, 3, 1, 2).to(dtype).clone()
    if training:
        x.requires_grad_(True)
    m = Head(P, training)
    with torch.set_grad_enabled(training):
        if head == "sgr":
            y = m.sgr(x, tensors["input.prior"].to(dtype))
        else:
            y = getattr(m, "nonlocal_" if head == "nonlocal" else head)(x)
    y = y.permute(0, 2, 3, 1)  # back to NHWC
    mode = "train" if training else "eval"
    res = {"out." + mode: y.detach().double()}
    if head == "sgr":
        res["sgr.adjacency"] = m.sgr_adjacency.double()
    if not training:
        return res
    y.backward(tensors["input.grad_out"].to(dtype))
    for name, (_, kind) in spec.items.items():
        t = P[name]
        if kind == "buf":
            if name != "sgr.adjacency":
                res["after." + name] = t.detach().double()
        else:
            res["grad." + name] = (t.grad if t.grad is not None else torch.zeros_like(t)).double()
    res["grad.input.x"] = x.grad.permute(0, 2, 3, 1).double()
    return res


def errors(a, ref, floor=0.0):
    """(max |a - ref| / max |ref|, ||a - ref|| / ||ref||), the scales floored
    at `floor` (see check_file)."""
    if not ref.numel():
        return 0.0, 0.0
    a = a.double()
    d = a - ref
    scale = max(ref.abs().max().item(), floor, 1e-30)
    return d.abs().max().item() / scale, d.norm().item() / max(ref.norm().item(), floor, 1e-30)


def check_file(path, tol):
    tensors, meta = read_safetensors(path)
    head = meta["head"]
    ci, co, k = int(meta["c_in"]), int(meta["c_out"]), int(meta["classes"])
    spec = build_spec(head, ci, co, k)
    stored = {n for n in tensors if not n.startswith(("input.", "out.", "grad.", "after."))}
    missing = sorted(set(spec.items) - stored)
    extra = sorted(stored - set(spec.items))
    bad_shape = sorted(n for n, (shape, _) in spec.items.items() if n in tensors and tuple(tensors[n].shape) != shape)
    if missing or extra or bad_shape:
        print("%s: construction MISMATCH: missing in file %s, extra in file %s, bad shapes %s" % (
            head, missing[:8], extra[:8], bad_shape[:8]))
        return None
    ref, f32 = {}, {}
    for training in (False, True):
        ref.update(run_head(head, spec, tensors, torch.float64, training))
        f32.update(run_head(head, spec, tensors, torch.float32, training))
    # A gradient that is zero in exact arithmetic (non-local's phi bias: the
    # per-query constant theta_i . b drops out of the softmax over keys) is
    # round-off in float32 and float64 alike: it is measured in units of the
    # head's largest gradient instead of its own (float64 zero) scale.
    grad_scale = max(r.abs().max().item() for n, r in ref.items() if n.startswith("grad."))
    rows = []
    for name, r in ref.items():
        if name not in tensors:
            print("%s: %s missing from the dump" % (head, name))
            return None
        zero = name.startswith("grad.") and r.abs().max().item() < 1e-9 * grad_scale
        floor = grad_scale if zero else 0.0
        rows.append((name,) + errors(tensors[name], r, floor) + errors(f32[name], r, floor))
    n_params = sum(tensors[n].numel() for n, (_, kind) in spec.items.items() if kind == "w")
    # Output elements on different sides of a final ReLU's kink: segnas 0 and
    # float64 positive or the reverse. Each sends a different gradient back,
    # so one such element fails the gradients by itself (a round-off event,
    # not a bug; the failing head's report names them).
    out64, out = ref["out.train"], tensors["out.train"].double()
    kinks = ((out64 > 0) != (out > 0)) & ((out64 == 0) | (out == 0))
    kink_max = (out64 - out).abs()[kinks].max().item() if kinks.any() else 0.0
    return {"head": head, "meta": meta, "rows": rows, "params": n_params, "kinks": (int(kinks.sum()), kink_max)}


def group_of(name):
    if name.startswith("out."):
        return name
    if name.startswith("after."):
        return "bn_stats"
    if name.startswith("grad."):
        return "grads"
    return "buffers"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check")
    c.add_argument("files", nargs="+")
    c.add_argument("--tol", type=float, default=1e-4)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--worst", type=int, default=3, help="worst tensors listed per failing head")
    args = ap.parse_args()
    global torch, F
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        sys.exit("heads_torch.py: PyTorch is missing for %s; run with /usr/bin/python3 (Debian python3-torch)"
                 % sys.executable)
    torch.set_num_threads(args.threads)
    results, status = [], 0
    for path in args.files:
        r = check_file(path, args.tol)
        if r is None:
            status = 2
            continue
        results.append(r)
    if not results:
        return status or 2
    m = results[0]["meta"]
    print("heads vs own PyTorch (float64 reference), batch %s, %sx%s, c_in %s -> c_out %s, %s classes, seed %s" % (
        m["batch"], m["height"], m["width"], m["c_in"], m["c_out"], m["classes"], m["seed"]))
    print("error = max|segnas - torch64| / max|torch64| per tensor (worst over the group); "
          "[torch32 floor]; gate %.0e" % args.tol)
    cols = ("out.eval", "out.train", "bn_stats", "grads", "buffers")
    hdr = "%-9s %8s " % ("head", "params") + " ".join("%-20s" % c for c in cols) + " verdict"
    print(hdr)
    print("-" * len(hdr))
    for r in results:
        worst = {}
        for name, s_max, s_norm, t_max, t_norm in r["rows"]:
            g = group_of(name)
            w = worst.setdefault(g, [0.0, 0.0])
            w[0], w[1] = max(w[0], s_max), max(w[1], t_max)
        fails = [x for x in r["rows"] if x[1] > args.tol]
        cell = lambda g: "%.1e [%.1e]" % tuple(worst[g]) if g in worst else "-"  # noqa: E731
        print("%-9s %8d " % (r["head"], r["params"]) + " ".join("%-20s" % cell(g) for g in cols) +
              (" PASS" if not fails else " FAIL (%d tensors)" % len(fails)))
        if fails:
            status = status or 1
            for name, s_max, s_norm, t_max, _ in sorted(fails, key=lambda x: -x[1])[:args.worst]:
                print("    %-40s max %.2e  norm %.2e  torch32 %.2e" % (name, s_max, s_norm, t_max))
            n_kinks, kink_max = r["kinks"]
            if n_kinks:
                print("    %d output element(s) on the other side of the final ReLU's kink (|difference| <= %.1e):"
                      " the gradients take different branches there" % (n_kinks, kink_max))
    norm_worst = max(x[2] for r in results for x in r["rows"])
    print("%s: %d heads, %d tensors compared; worst norm-wise error %.2e" % (
        "PASS" if status == 0 else "FAIL", len(results), sum(len(r["rows"]) for r in results), norm_worst))
    return status


if __name__ == "__main__":
    sys.exit(main())
