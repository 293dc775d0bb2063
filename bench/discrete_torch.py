#!/usr/bin/python3
"""The peer of `segnas bench infer`: an independent PyTorch implementation of
segnas's discrete Auto-DeepLab network (src/models/autodeeplab.c, aspp.c,
decoder.c, src/nn/cell_ops.c), with the same construction, order of ops and
parameter names, so that the weights of a `segnas bench infer --save DIR` run
can be loaded and the logits compared (issue 5, inference speed bar).

  check DIR   rebuilds the network from DIR/config.json, checks that the
              names and shapes of DIR/weights.safetensors are exactly those of
              this construction, runs DIR/input.safetensors through it in
              evaluation mode in float64 (the reference) and float32, and
              compares DIR/output.safetensors (segnas's logits): max rel err =
              max |segnas - torch64| / max |torch64|, and the L2 relative
              error; PASS/FAIL against --tol (1e-4). float32 torch vs float64
              torch is printed as the float32 noise floor. Last line: JSON.
  time DIR    median seconds per image of the float32 forward pass under
              torch.inference_mode (eval: BN with running statistics, no
              dropout), after one warm-up, the median CPU seconds of the
              process (all threads, for diagnosis) and peak RSS, as one JSON
              line; the
              warm-up's logits are also compared with segnas's.
              --mode shipped: NCHW, as PyTorch ships; --mode tuned:
              channels_last weights and input, and the process re-executes
              itself with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:
              glibc.malloc.trim_threshold=1073741824 and OPENBLAS_NUM_THREADS
              (DESIGN.md). Neither mode folds BN into the convolutions (segnas
              does not either).

Conventions mirrored from segnas (DESIGN.md, include/segnas/models.h): conv
weights are HWIO {KH,KW,Cin/g,Cout} in the file (OIHW here), activations NHWC
there (NCHW here); TF 'SAME' padding (odd pixel at the bottom/right); BN eps
1e-5; bilinear resizes with align_corners=True (deeplab utils.py) except the
0.5 resize before a strided atrous op (align_corners=False); 3x3 'SAME' pools,
average excluding padding. Only the ASPP head is implemented.

Run with /usr/bin/python3 (Debian's torch 1.13). No safetensors package is
needed: the format is read with json+struct (as bench/supernet_torch.py).
"""
import argparse
import json
import os
import resource
import statistics
import struct
import sys
import time

TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
       "sep_conv_3x3", "sep_conv_5x5", "atrous_3x3", "atrous_5x5"]


# ---- configuration and plan (sn_model_plan) -----------------------------------
class Cfg:
    def __init__(self, j):
        g = j["genotype"]
        self.path = [int(p) for p in g["path"]]
        self.levels = int(g["levels"])
        # cell: per block two [input, "op"] pairs
        self.cell = [[(int(p[0]), OPS.index(p[1])) for p in blk] for blk in g["cell"]]
        self.blocks = len(self.cell)
        self.F = int(j["F"])
        self.classes = int(j["classes"])
        self.head = j["head"]
        self.stem = int(j["stem_channels"])
        self.aspp = int(j["aspp_channels"])
        self.dec_low = int(j["decoder_low_channels"])
        self.dec = int(j["decoder_channels"])
        self.decoder = bool(j["decoder"])
        if self.head != "aspp":
            sys.exit("discrete_torch.py: head '%s': only aspp is implemented here" % self.head)

    def cell_out(self, level):
        return self.blocks * self.F << level

    def plan(self, l):
        level = self.path[l]
        prev_level = self.path[l - 1] if l else 0
        c = self.F << level
        c_pp = self.stem if l == 0 else 2 * self.stem if l == 1 else self.cell_out(self.path[l - 2])
        return {"level": level, "stride": 2 if level > prev_level else 1, "up": level < prev_level, "c": c,
                "c_prev": self.cell_out(prev_level) if l else 2 * self.stem, "c_pp": c_pp, "proj": c_pp != c}

    def low_level_cell(self):
        last = -1
        for l, s in enumerate(self.path):
            if s == 0:
                last = l
        return last

    def aspp_rates(self):
        os_ = 4 << self.path[-1]
        return [max(b * 16 // os_, 1) for b in (6, 12, 18)]


def same_pad(k, stride, dil, n):
    """TF 'SAME': out = ceil(n / stride); the odd missing pixel at the end."""
    out = (n + stride - 1) // stride
    total = max((out - 1) * stride + (k - 1) * dil + 1 - n, 0)
    return total // 2, total - total // 2


# ---- construction: names and shapes (torch layouts), as segnas's _init --------
def build_spec(c):
    sp = {}

    def conv(name, cin, cout, k, groups=1, bias=False):
        sp[name + ".weight"] = (cout, cin // groups, k, k)
        if bias:
            sp[name + ".bias"] = (cout,)

    def conv_bn(name, cin, cout, k, groups=1):  # every BN of the discrete network is affine
        conv(name + ".conv", cin, cout, k, groups)
        for leaf in ("gamma", "beta", "running_mean", "running_var"):
            sp["%s.bn.%s" % (name, leaf)] = (cout,)

    for i, (ci, co) in enumerate(((3, c.stem), (c.stem, c.stem), (c.stem, 2 * c.stem))):
        conv_bn("stem%d" % i, ci, co, 3)
    for l in range(len(c.path)):
        p = c.plan(l)
        w = p["c"]
        conv_bn("cell%d.pre_prev" % l, p["c_prev"], w, 1)
        if p["proj"]:
            conv_bn("cell%d.pre_prev_prev" % l, p["c_pp"], w, 1)
        for b, pair in enumerate(c.cell):
            for k, (inp, op) in enumerate(pair):
                stride = p["stride"] if inp < 2 else 1
                pre = "cell%d.block%d.%s.%s" % (l, b, "right" if k else "left", OPS[op])
                name = OPS[op]
                if name.startswith("sep_conv"):
                    ks = 3 if name.endswith("3x3") else 5
                    conv(pre + ".dw1.conv", w, w, ks, groups=w)
                    conv_bn(pre + ".pw1", w, w, 1)
                    conv(pre + ".dw2.conv", w, w, ks, groups=w)
                    conv_bn(pre + ".pw2", w, w, 1)
                elif name.startswith("atrous"):
                    conv_bn(pre, w, w, 3 if name.endswith("3x3") else 5)
                elif name == "skip_connect" and stride == 2:
                    conv_bn(pre, w, w, 1)
    top = c.cell_out(c.path[-1])
    conv_bn("aspp.image_pooling", top, c.aspp, 1)
    conv_bn("aspp.aspp0", top, c.aspp, 1)
    for i in range(3):
        conv_bn("aspp.aspp%d" % (i + 1), top, c.aspp, 3)
    conv_bn("aspp.concat_projection", 5 * c.aspp, c.aspp, 1)
    if c.decoder:
        c_low = 2 * c.stem if c.low_level_cell() < 0 else c.cell_out(0)
        conv_bn("decoder.feature_projection0", c_low, c.dec_low, 1)
        conv_bn("decoder.decoder_conv0", c.aspp + c.dec_low, c.dec, 3)
        conv_bn("decoder.decoder_conv1", c.dec, c.dec, 3)
        conv("decoder.logits", c.dec, c.classes, 1, bias=True)
    else:
        conv("logits", c.aspp, c.classes, 1, bias=True)
    return sp


# ---- forward (evaluation mode) ---------------------------------------------------
class Net:
    """Functional model over a dict P of name -> tensor (OIHW weights)."""

    def __init__(self, cfg, P, channels_last=False):
        self.c, self.P, self.cl = cfg, P, channels_last
        self.nchw_convs = 0  # convolutions fed an NCHW input in channels_last mode (should stay 0)

    def conv(self, name, x, k, stride=1, dil=1, groups=1, bias=False):
        if self.cl and x.shape[2] * x.shape[3] > 1 and not x.is_contiguous(memory_format=torch.channels_last):
            self.nchw_convs += 1
        w = self.P[name + ".weight"]
        b = self.P[name + ".bias"] if bias else None
        pt, pb = same_pad(k, stride, dil, x.shape[2])
        pl, pr = same_pad(k, stride, dil, x.shape[3])
        if pt == pb and pl == pr:
            return F.conv2d(x, w, b, stride, (pt, pl), dil, groups)
        return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride, 0, dil, groups)

    def bn(self, name, x):
        P = self.P
        return F.batch_norm(x, P[name + ".running_mean"], P[name + ".running_var"], P[name + ".gamma"],
                            P[name + ".beta"], False, 0.1, 1e-5)

    def conv_bn(self, name, x, k, stride=1, dil=1, groups=1, relu_before=False, relu_after=False):
        if relu_before:
            x = F.relu(x)
        y = self.bn(name + ".bn", self.conv(name + ".conv", x, k, stride, dil, groups))
        return F.relu(y) if relu_after else y

    @staticmethod
    def resize(x, h, w, align_corners=True):
        if x.shape[2] == h and x.shape[3] == w:
            return x
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=align_corners)

    @staticmethod
    def pool3x3(x, kind, stride):
        """3x3 'SAME' pooling; the average excludes padded cells."""
        pt, pb = same_pad(3, stride, 1, x.shape[2])
        pl, pr = same_pad(3, stride, 1, x.shape[3])
        if kind == "max_pool_3x3":
            if pt == pb and pl == pr:
                return F.max_pool2d(x, 3, stride, (pt, pl))
            return F.max_pool2d(F.pad(x, (pl, pr, pt, pb), value=float("-inf")), 3, stride)
        if pt == pb and pl == pr:
            return F.avg_pool2d(x, 3, stride, (pt, pl), count_include_pad=False)
        s = F.avg_pool2d(F.pad(x, (pl, pr, pt, pb)), 3, stride, divisor_override=1)
        ones = torch.ones((1, 1) + tuple(x.shape[2:]), dtype=x.dtype)
        n = F.avg_pool2d(F.pad(ones, (pl, pr, pt, pb)), 3, stride, divisor_override=1)
        return s / n

    def cell_op(self, pre, op, x, c, stride):
        name = OPS[op]
        if name.startswith("sep_conv"):
            k = 3 if name.endswith("3x3") else 5
            y = self.conv(pre + ".dw1.conv", F.relu(x), k, stride, groups=c)
            y = self.bn(pre + ".pw1.bn", self.conv(pre + ".pw1.conv", y, 1))
            y = self.conv(pre + ".dw2.conv", F.relu(y), k, groups=c)
            return self.bn(pre + ".pw2.bn", self.conv(pre + ".pw2.conv", y, 1))
        if name.startswith("atrous"):
            k = 3 if name.endswith("3x3") else 5
            if stride == 2:  # nas_cell.py: resize by 0.5, then rate 1
                x = self.resize(x, (x.shape[2] + 1) // 2, (x.shape[3] + 1) // 2, align_corners=False)
            return self.conv_bn(pre, x, k, dil=2 if stride == 1 else 1, relu_before=True)
        if name in ("max_pool_3x3", "avg_pool_3x3"):
            return self.pool3x3(x, name, stride)  # c_in == c_out in a discrete cell: no projection
        if name == "skip_connect":
            return self.conv_bn(pre, x, 1, stride=2, relu_before=True) if stride == 2 else x
        raise ValueError("operator %s in a discrete cell" % name)

    def cell(self, l, prev, prev_prev, sizes):
        c, p = self.c, self.c.plan(l)
        if p["up"]:
            prev = self.resize(prev, *sizes[p["level"]])
        prev_prev = self.resize(prev_prev, prev.shape[2], prev.shape[3])
        s0 = self.conv_bn("cell%d.pre_prev_prev" % l, prev_prev, 1, relu_before=True) if p["proj"] else prev_prev
        states = [s0, self.conv_bn("cell%d.pre_prev" % l, prev, 1, relu_before=True)]
        for b, pair in enumerate(c.cell):
            y = [self.cell_op("cell%d.block%d.%s.%s" % (l, b, "right" if k else "left", OPS[op]), op, states[inp],
                              p["c"], p["stride"] if inp < 2 else 1) for k, (inp, op) in enumerate(pair)]
            states.append(y[0] + y[1])
        return torch.cat(states[2:], 1)

    def aspp(self, x):
        h, w = x.shape[2], x.shape[3]
        pooled = self.conv_bn("aspp.image_pooling", x.mean((2, 3), keepdim=True), 1, relu_after=True)
        b0 = pooled.expand(-1, -1, h, w)  # align_corners resize of a 1x1 map: a broadcast
        if self.cl:  # torch.cat of an expanded tensor would fall back to NCHW
            b0 = b0.contiguous(memory_format=torch.channels_last)
        branches = [b0,
                    self.conv_bn("aspp.aspp0", x, 1, relu_after=True)]
        for i, r in enumerate(self.c.aspp_rates()):
            branches.append(self.conv_bn("aspp.aspp%d" % (i + 1), x, 3, dil=r, relu_after=True))
        return self.conv_bn("aspp.concat_projection", torch.cat(branches, 1), 1, relu_after=True)

    def forward(self, images):
        c = self.c
        a = self.conv_bn("stem0", images, 3, stride=2, relu_after=True)
        prev_prev = self.conv_bn("stem1", a, 3)
        prev = self.conv_bn("stem2", prev_prev, 3, stride=2, relu_before=True)
        sizes = [(prev.shape[2], prev.shape[3])]
        for _ in range(1, c.levels):
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
        low, low_cell = prev, c.low_level_cell()
        for l in range(len(c.path)):
            out = self.cell(l, prev, prev_prev, sizes)
            if l == low_cell:
                low = out
            prev_prev, prev = prev, out
        x = self.aspp(F.relu(prev))
        if c.decoder:
            proj = self.conv_bn("decoder.feature_projection0", low, 1, relu_after=True)
            x = torch.cat([self.resize(x, low.shape[2], low.shape[3]), proj], 1)
            x = self.conv_bn("decoder.decoder_conv0", x, 3, relu_after=True)
            x = self.conv_bn("decoder.decoder_conv1", x, 3, relu_after=True)
            x = self.conv("decoder.logits", x, 1, bias=True)
        else:
            x = self.conv("logits", x, 1, bias=True)
        return self.resize(x, images.shape[2], images.shape[3])


# ---- files -----------------------------------------------------------------------
def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    header.pop("__metadata__", None)
    data = bytearray(raw[8 + n:])
    out = {}
    for name, e in header.items():
        if e["dtype"] != "F32":
            sys.exit("discrete_torch.py: %s: dtype %s (F32 expected)" % (name, e["dtype"]))
        b, en = e["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.float32, count=(en - b) // 4, offset=b) if en > b else \
            torch.zeros(0)
        out[name] = t.reshape(e["shape"]).clone()
    return out


def load(d):
    with open(os.path.join(d, "config.json")) as f:
        cfg = Cfg(json.load(f))
    spec = build_spec(cfg)
    raw = read_safetensors(os.path.join(d, "weights.safetensors"))
    missing = sorted(set(spec) - set(raw))
    extra = sorted(set(raw) - set(spec))
    P = {}
    bad = []
    for name, shape in spec.items():
        if name not in raw:
            continue
        t = raw[name]
        if len(shape) == 4:
            t = t.permute(3, 2, 0, 1).contiguous()  # HWIO -> OIHW
        if tuple(t.shape) != shape:
            bad.append("%s %s (expected %s)" % (name, tuple(t.shape), shape))
        P[name] = t
    if missing or extra or bad:
        sys.exit("discrete_torch.py: construction MISMATCH with %s: missing in file %s, extra in file %s, bad shapes "
                 "%s" % (d, missing[:8], extra[:8], bad[:8]))
    images = read_safetensors(os.path.join(d, "input.safetensors"))["input"].permute(0, 3, 1, 2).contiguous()
    ref = read_safetensors(os.path.join(d, "output.safetensors"))["logits"].permute(0, 3, 1, 2).contiguous()
    return cfg, P, images, ref


def errors(a, ref):
    """(max |a - ref| / max |ref|, ||a - ref|| / ||ref||) in float64."""
    d = a.double() - ref.double()
    return (d.abs().max().item() / max(ref.double().abs().max().item(), 1e-30),
            d.norm().item() / max(ref.double().norm().item(), 1e-30))


def forward(cfg, P, images, dtype, channels_last=False):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    Q = {k: (v.to(dtype).contiguous(memory_format=fmt) if v.dim() == 4 else v.to(dtype)) for k, v in P.items()}
    x = images.to(dtype).contiguous(memory_format=fmt)
    with torch.inference_mode():
        return Net(cfg, Q, channels_last).forward(x)


# ---- check -------------------------------------------------------------------------
def check(args):
    torch.set_num_threads(args.threads)
    cfg, P, images, seg = load(args.dir)
    print("network: path %s, F=%d, B=%d, %d classes, head %s%s; %d tensors, %d weights; input %s" % (
        cfg.path, cfg.F, cfg.blocks, cfg.classes, cfg.head, "" if cfg.decoder else " (no decoder)", len(P),
        sum(v.numel() for k, v in P.items() if not k.endswith(("running_mean", "running_var"))),
        "x".join(str(s) for s in images.shape)))
    t0 = time.perf_counter()
    ref = forward(cfg, P, images, torch.float64)
    t1 = time.perf_counter()
    f32 = forward(cfg, P, images, torch.float32)
    s_max, s_l2 = errors(seg, ref)
    t_max, t_l2 = errors(f32, ref)
    print("logits: max |ref| %.4g; segnas vs torch64: max rel err %.2e, L2 rel err %.2e; torch32 vs torch64 "
          "(float32 floor): %.2e, %.2e  (float64 pass %.1f s)" % (ref.abs().max().item(), s_max, s_l2, t_max,
                                                                  t_l2, t1 - t0))
    ok = s_max <= args.tol and s_l2 <= args.tol
    print("%s: segnas logits within %.0e of float64 torch (max rel %.2e)" % ("PASS" if ok else "FAIL", args.tol,
                                                                          s_max))
    print(json.dumps({"check": "PASS" if ok else "FAIL", "height": images.shape[2], "width": images.shape[3],
                      "max_rel_err": s_max, "l2_rel_err": s_l2, "torch32_max_rel_err": t_max,
                      "torch32_l2_rel_err": t_l2}))
    return 0 if ok else 1


# ---- time -----------------------------------------------------------------------------
def ensure_tuned_env(args):
    want = {"GLIBC_TUNABLES": TUNABLES, "OPENBLAS_NUM_THREADS": str(args.threads)}
    env = os.environ
    if all(env.get(k) == v for k, v in want.items()) and "OPENBLAS_CORETYPE" not in env:
        return
    if env.get("SEGNAS_TORCH_REEXEC"):
        sys.exit("discrete_torch.py: could not set the tuned environment")
    new_env = dict(env, SEGNAS_TORCH_REEXEC="1", **want)
    new_env.pop("OPENBLAS_CORETYPE", None)
    os.execve(sys.executable, [sys.executable] + sys.argv, new_env)


def time_mode(args):
    if args.mode == "tuned":
        ensure_tuned_env(args)
    torch.set_num_threads(args.threads)
    cfg, P, images, seg = load(args.dir)
    cl = args.mode == "tuned"
    fmt = torch.channels_last if cl else torch.contiguous_format
    P = {k: (v.contiguous(memory_format=fmt) if v.dim() == 4 else v) for k, v in P.items()}
    x = images.contiguous(memory_format=fmt)
    del images
    net = Net(cfg, P, cl)
    times, cpu = [], []
    with torch.inference_mode():
        for r in range(args.reps + 1):
            t0, c0 = time.perf_counter(), time.process_time()
            y = net.forward(x)
            dt, dc = time.perf_counter() - t0, time.process_time() - c0
            if r == 0:
                err_max, err_l2 = errors(y, seg)
                out_cl = y.is_contiguous(memory_format=torch.channels_last)
            else:
                times.append(dt)
                cpu.append(dc)
            del y
    s = statistics.median(times) / x.shape[0]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "torch-" + args.mode, "height": x.shape[2], "width": x.shape[3], "batch": x.shape[0],
                      "threads": args.threads, "reps": len(times), "ms_per_image": round(1e3 * s, 2),
                      "images_per_s": round(1.0 / s, 4),
                      "cpu_ms_per_image": round(1e3 * statistics.median(cpu) / x.shape[0], 2), "peak_rss_mib": round(rss, 1),
                      "max_rel_err_vs_segnas": err_max, "l2_rel_err_vs_segnas": err_l2,
                      "output_channels_last": out_cl, "nchw_convs": net.nchw_convs, "torch": torch.__version__}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("check")
    p.add_argument("dir")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("time")
    t.add_argument("dir")
    t.add_argument("--mode", choices=["shipped", "tuned"], default="shipped")
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    global torch, F
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        sys.exit("discrete_torch.py: PyTorch is missing for %s; run with /usr/bin/python3 (Debian python3-torch)"
                 % sys.executable)
    return check(args) if args.cmd == "check" else time_mode(args)


if __name__ == "__main__":
    sys.exit(main())
