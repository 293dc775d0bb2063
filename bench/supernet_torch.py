#!/usr/bin/python3
"""The peer of bench/bench_supernet.c: an independent PyTorch implementation of
segnas's Auto-DeepLab supernet (src/search/supernet.c, src/nn/cell_ops.c),
with the same construction, operator definitions, order of ops and parameter
names, so that a segnas dump can be loaded and checked tensor by tensor.

  parity FILE   loads a `bench_supernet dump` file (safetensors: weights, BN
                buffers before the forward, alpha, beta, the batch, the loss and
                every gradient), runs the same forward + backward in training
                mode in float64 (the reference) and float32, and prints the
                relative error ||g_segnas - g_torch64|| / ||g_torch64|| of the
                loss, every gradient and every updated BN statistic, the worst
                tensors, and PASS/FAIL against --tol (1e-4). float32 torch vs
                float64 torch is printed as the float32 noise floor.
  time          the search step in PyTorch: SGD (momentum 0.9, wd 3e-4) on the
                weights and Adam (3e-3, wd 1e-3) on alpha/beta, each step with
                the other group frozen, as src/train/search_step.c; median
                seconds of each and peak RSS, one JSON line. --mode shipped (NCHW)
                or tuned (channels_last, and the process re-executes itself with
                GLIBC_TUNABLES=glibc.malloc.mmap_threshold=33554432:
                glibc.malloc.trim_threshold=1073741824 and OPENBLAS_NUM_THREADS).

Conventions mirrored from segnas: conv weights are stored HWIO {KH,KW,Cin/g,
Cout} in the file (OIHW here), activations NHWC there (NCHW here); TF 'SAME'
padding (odd pixel at the bottom/right); BN momentum 0.1, eps 1e-5, unbiased
running variance; bilinear resize with align_corners=False; 3x3 'SAME' pools,
average excluding padding; cross-entropy mean over labels != 255.

Run with /usr/bin/python3 (Debian's torch 1.13; the first python3 on PATH has
none). No safetensors package is needed: the format is read with json+struct.
"""
import argparse
import json
import math
import os
import resource
import statistics
import struct
import sys
import time

TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"
OPS = ["none", "max_pool_3x3", "avg_pool_3x3", "skip_connect",
       "sep_conv_3x3", "sep_conv_5x5", "atrous_3x3", "atrous_5x5"]


class Cfg:
    def __init__(self, layers=12, levels=4, blocks=5, F=8, classes=19, stem=64, aspp=0, affine=False):
        self.layers, self.levels, self.blocks, self.F = layers, levels, blocks, F
        self.classes, self.stem, self.aspp, self.affine = classes, stem, aspp, affine

    def level_ch(self, s):
        return self.blocks * self.F << s

    def block_w(self, s):
        return self.F << s

    def top(self, layer):
        return min(layer, self.levels - 1)

    def n_edges(self):
        return first_edge(self.blocks)

    def n_beta(self):
        return max(self.layers - 1, 1) * self.levels * 3


def first_edge(block):
    return block * (block + 3) // 2


def same_pad(k, stride, dil, n):
    """TF 'SAME': out = ceil(n / stride); the odd missing pixel at the end."""
    out = (n + stride - 1) // stride
    total = max((out - 1) * stride + (k - 1) * dil + 1 - n, 0)
    return total // 2, total - total // 2


# ---- construction: names and shapes (torch layouts), as segnas's _init -------
class Spec:
    """Ordered parameter/buffer specification: name -> (shape, kind, init)."""

    def __init__(self):
        self.items = {}

    def conv(self, name, cin, cout, k, groups=1, bias=False):
        self.items[name + ".weight"] = ((cout, cin // groups, k, k), "w", ("he", k * k * (cin // groups)))
        if bias:
            self.items[name + ".bias"] = ((cout,), "w", ("zero",))

    def bn(self, name, c, affine):
        if affine:
            self.items[name + ".gamma"] = ((c,), "w", ("one",))
            self.items[name + ".beta"] = ((c,), "w", ("zero",))
        self.items[name + ".running_mean"] = ((c,), "buf", ("zero",))
        self.items[name + ".running_var"] = ((c,), "buf", ("one",))

    def conv_bn(self, name, cin, cout, k, affine, groups=1):
        self.conv(name + ".conv", cin, cout, k, groups)
        self.bn(name + ".bn", cout, affine)


def build_spec(c):
    sp = Spec()
    stem_in, stem_out = [3, c.stem, c.stem], [c.stem, c.stem, 2 * c.stem]
    for i in range(3):
        sp.conv_bn("stem%d" % i, stem_in[i], stem_out[i], 3, True)
    for l in range(c.layers):
        for s in range(c.top(l) + 1):
            for d in range(3):
                src = s - d + 1
                if l == 0:
                    if d != 1:
                        continue
                    c_src = 2 * c.stem
                else:
                    if src < 0 or src > c.top(l - 1):
                        continue
                    c_src = c.level_ch(src)
                pre = "layer%d.level%d.in%d" % (l, s, d)
                w = c.block_w(s)
                sp.conv_bn(pre + ".transition", c_src, w, 3 if d == 2 else 1, c.affine)
                sp.conv_bn(pre + ".pre_prev_prev", prev_prev_channels(c, l, s), w, 1, c.affine)
                for e in range(c.n_edges()):
                    for k, op in enumerate(OPS):
                        p = "%s.edge%d.%s" % (pre, e, op)
                        if op.startswith("sep_conv"):
                            ks = 3 if op.endswith("3x3") else 5
                            sp.conv(p + ".dw1.conv", w, w, ks, groups=w)
                            sp.conv_bn(p + ".pw1", w, w, 1, c.affine)
                            sp.conv(p + ".dw2.conv", w, w, ks, groups=w)
                            sp.conv_bn(p + ".pw2", w, w, 1, c.affine)
                        elif op.startswith("atrous"):
                            sp.conv_bn(p, w, w, 3 if op.endswith("3x3") else 5, c.affine)
    for s in range(c.top(c.layers - 1) + 1):
        cin = c.level_ch(s)
        ca = c.aspp or cin
        for br, k in (("b1x1", 1), ("b3x3", 3), ("bpool", 1)):
            sp.conv_bn("aspp%d.%s" % (s, br), cin, ca, k, True)
        sp.conv("aspp%d.classifier" % s, 3 * ca, c.classes, 1, bias=True)
    sp.items["alpha"] = ((c.n_edges(), len(OPS)), "arch", ("arch",))
    sp.items["beta"] = ((c.n_beta(),), "arch", ("arch",))
    return sp


def prev_prev_channels(c, layer, level):
    if layer == 0:
        return c.stem
    if layer == 1:
        return 2 * c.stem
    return c.level_ch(min(level, c.top(layer - 2)))


# ---- forward -----------------------------------------------------------------
class Supernet:
    """Functional model over a dict P of name -> tensor (OIHW weights)."""

    def __init__(self, cfg, P, training=True):
        self.c, self.P, self.training = cfg, P, training

    def conv(self, name, x, k, stride=1, dil=1, groups=1, bias=False):
        w = self.P[name + ".weight"]
        b = self.P[name + ".bias"] if bias else None
        pt, pb = same_pad(k, stride, dil, x.shape[2])
        pl, pr = same_pad(k, stride, dil, x.shape[3])
        if pt == pb and pl == pr:
            return F.conv2d(x, w, b, stride, (pt, pl), dil, groups)
        return F.conv2d(F.pad(x, (pl, pr, pt, pb)), w, b, stride, 0, dil, groups)

    def bn(self, name, x):
        P = self.P
        return F.batch_norm(x, P[name + ".running_mean"], P[name + ".running_var"], P.get(name + ".gamma"),
                            P.get(name + ".beta"), self.training, 0.1, 1e-5)

    def conv_bn(self, name, x, k, stride=1, dil=1, groups=1, relu_before=False, relu_after=False):
        if relu_before:
            x = F.relu(x)
        y = self.bn(name + ".bn", self.conv(name + ".conv", x, k, stride, dil, groups))
        return F.relu(y) if relu_after else y

    def cell_op(self, p, k, x, w):
        op = OPS[k]
        if op == "none":
            return None
        if op == "max_pool_3x3":
            return F.max_pool2d(x, 3, 1, 1)
        if op == "avg_pool_3x3":
            return F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        if op == "skip_connect":
            return x
        ks = 3 if op.endswith("3x3") else 5
        if op.startswith("sep_conv"):
            y = self.conv(p + ".dw1.conv", F.relu(x), ks, groups=w)
            y = self.conv_bn(p + ".pw1", y, 1)
            y = self.conv(p + ".dw2.conv", F.relu(y), ks, groups=w)
            return self.conv_bn(p + ".pw2", y, 1)
        return self.conv_bn(p, x, ks, dil=2, relu_before=True)  # atrous, rate 2

    @staticmethod
    def resize(x, h, w):
        if x.shape[2] == h and x.shape[3] == w:
            return x
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)

    def cell(self, pre, level, prev_prev, prev):
        w = self.c.block_w(level)
        alpha = self.P["alpha"]
        states = [self.conv_bn(pre + ".pre_prev_prev", self.resize(prev_prev, prev.shape[2], prev.shape[3]), 1,
                               relu_before=True), prev]
        for blk in range(self.c.blocks):
            total = None
            for j in range(blk + 2):
                e = first_edge(blk) + j
                probs = torch.softmax(alpha[e], 0)
                mixed = None
                for k in range(len(OPS)):
                    y = self.cell_op("%s.edge%d.%s" % (pre, e, OPS[k]), k, states[j], w)
                    if y is None:
                        continue
                    mixed = probs[k] * y if mixed is None else mixed + probs[k] * y
                total = mixed if total is None else total + mixed
            states.append(total)
        return torch.cat(states[2:], 1)

    def source_probs(self, t, src):
        lo = 1 if src == 0 else 0
        hi = 2 if src < self.c.levels - 1 else 1
        off = (t * self.c.levels + src) * 3
        return torch.softmax(self.P["beta"][off + lo:off + hi + 1], 0), lo

    def aspp(self, s, x):
        pre = "aspp%d" % s
        rate = max(96 // (4 << s), 1)
        pooled = self.conv_bn(pre + ".bpool", x.mean((2, 3), keepdim=True), 1, relu_after=True)
        branches = [self.conv_bn(pre + ".b1x1", x, 1, relu_after=True),
                    self.conv_bn(pre + ".b3x3", x, 3, dil=rate, relu_after=True),
                    self.resize(pooled, x.shape[2], x.shape[3])]
        return self.conv(pre + ".classifier", torch.cat(branches, 1), 1, bias=True)

    def forward(self, images):
        c = self.c
        a = self.conv_bn("stem0", images, 3, stride=2, relu_after=True)
        stem_mid = self.conv_bn("stem1", a, 3, relu_after=True)
        stem_out = self.conv_bn("stem2", stem_mid, 3, stride=2, relu_after=True)
        sizes = [(stem_out.shape[2], stem_out.shape[3])]
        for s in range(1, c.levels):
            sizes.append(((sizes[-1][0] + 1) // 2, (sizes[-1][1] + 1) // 2))
        pp = prev = None  # per layer: (h list, probs list, d_first list)
        for l in range(c.layers):
            h, probs = [None] * c.levels, [None] * c.levels
            for s in range(c.top(l) + 1):
                if l == 0:
                    h_pp = stem_mid
                elif l == 1:
                    h_pp = stem_out
                else:
                    h_pp = pp[0][min(s, c.top(l - 2))]
                total = None
                for d in range(3):
                    src = s - d + 1
                    if l == 0:
                        if d != 1:
                            continue
                        src_h = stem_out
                    else:
                        if src < 0 or src > c.top(l - 1):
                            continue
                        src_h = prev[0][src]
                    pre = "layer%d.level%d.in%d" % (l, s, d)
                    if d == 0:
                        src_h = self.resize(src_h, *sizes[s])
                    k, stride = (3, 2) if d == 2 else (1, 1)
                    t = self.conv_bn(pre + ".transition", src_h, k, stride=stride, relu_before=True)
                    out = self.cell(pre, s, h_pp, t)
                    if l == 0:
                        total = out
                        break
                    p, lo = prev[1][src]
                    term = p[d - lo] * out
                    total = term if total is None else total + term
                h[s] = total
                if l + 1 < c.layers:
                    probs[s] = self.source_probs(l, s)
            pp, prev = prev, (h, probs)
        logits = None
        for s in range(c.top(c.layers - 1) + 1):
            y = self.resize(self.aspp(s, prev[0][s]), images.shape[2], images.shape[3])
            logits = y if logits is None else logits + y
        return logits


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
            sys.exit("supernet_torch.py: %s: dtype %s (F32 expected)" % (name, e["dtype"]))
        b, en = e["data_offsets"]
        t = torch.frombuffer(data, dtype=torch.float32, count=(en - b) // 4, offset=b) if en > b else \
            torch.zeros(0)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta


def hwio_to_oihw(t):
    return t.permute(3, 2, 0, 1).contiguous()


def oihw_to_hwio(t):
    return t.permute(2, 3, 1, 0).contiguous()


# ---- parity ------------------------------------------------------------------
def cfg_from_meta(meta):
    g = lambda k: int(meta[k])  # noqa: E731
    return Cfg(g("layers"), g("levels"), g("blocks"), g("F"), g("classes"), g("stem"), g("aspp"),
               bool(g("affine")))


def run_once(cfg, spec, tensors, dtype):
    """Forward + backward in training mode; returns loss, grads and updated
    buffers in segnas layouts (float64)."""
    P = {}
    for name, (shape, kind, _) in spec.items.items():
        t = tensors[name]
        if len(shape) == 4:
            t = hwio_to_oihw(t)
        t = t.to(dtype).clone()
        if kind != "buf":
            t.requires_grad_(True)
        P[name] = t
    x = tensors["input.images"].permute(0, 3, 1, 2).to(dtype).contiguous()
    labels = tensors["input.labels"].round().long()
    logits = Supernet(cfg, P, training=True).forward(x)
    loss = F.cross_entropy(logits, labels, ignore_index=255)
    loss.backward()
    res = {"out.loss": loss.detach().double().reshape(1)}
    for name, (shape, kind, _) in spec.items.items():
        t = P[name]
        if kind == "buf":
            res["after." + name] = t.detach().double()
        else:
            g = t.grad if t.grad is not None else torch.zeros_like(t)
            res["grad." + name] = (oihw_to_hwio(g) if len(shape) == 4 else g).double()
    return res


def rel_err(a, ref, scale=None):
    """||a - ref|| / ||ref||, with ||ref|| floored at 1e-7 per element: a
    reference that is zero up to round-off (e.g. the running mean of a BN
    whose input is itself batch-normalised over the same samples, exactly 0
    in exact arithmetic) is compared in absolute terms; `scale` floors it
    further (running means: 0.1 * ||batch std||)."""
    d = (a.double() - ref).norm().item()
    n = max(ref.norm().item(), 1e-7 * math.sqrt(max(ref.numel(), 1)), scale or 0.0)
    return d / n


def parity(args):
    tensors, meta = read_safetensors(args.file)
    cfg = cfg_from_meta(meta)
    spec = build_spec(cfg)
    # The construction itself: the same names with the same shapes.
    file_params = {k for k in tensors if not k.startswith(("grad.", "after.", "input.", "out."))}
    missing = sorted(set(spec.items) - file_params)
    extra = sorted(file_params - set(spec.items))
    bad_shape = [k for k, (shape, _, _) in spec.items.items() if k in tensors and
                 tuple(hwio_to_oihw(tensors[k]).shape if len(shape) == 4 else tensors[k].shape) != shape]
    print("config: %s, batch %s, %sx%s; %d parameters/buffers in the file, %d in the torch construction" % (
        json.dumps({k: meta[k] for k in ("layers", "levels", "blocks", "F", "classes", "stem")}),
        meta["batch"], meta["height"], meta["width"], len(file_params), len(spec.items)))
    if missing or extra or bad_shape:
        print("construction MISMATCH: missing in file %s, extra in file %s, bad shapes %s" % (
            missing[:10], extra[:10], bad_shape[:10]))
        return 1
    torch.set_num_threads(args.threads)
    ref = run_once(cfg, spec, tensors, torch.float64)
    f32 = run_once(cfg, spec, tensors, torch.float32)
    rows = []
    for name in ref:
        scale = None
        if name.endswith(".running_mean"):
            # In units of the batch std: the mean of a batch-normalised input
            # is 0 up to round-off, and its relative error means nothing.
            # running_var after = 0.9 * before + 0.1 * batch variance.
            var_name = name[:-len("mean")] + "var"
            batch_var = ((ref[var_name] - 0.9 * tensors[var_name[len("after."):]].double()) / 0.1).clamp(min=0)
            scale = 0.1 * batch_var.sqrt().norm().item()
        rows.append((name, rel_err(tensors[name], ref[name], scale), rel_err(f32[name], ref[name], scale),
                     ref[name].norm().item()))
    loss_row = [r for r in rows if r[0] == "out.loss"][0]
    print("loss: segnas %.9g, torch64 %.9g, torch32 %.9g; rel err segnas %.2e, torch32 %.2e" % (
        tensors["out.loss"].item(), ref["out.loss"].item(), f32["out.loss"].item(), loss_row[1], loss_row[2]))
    groups = {}
    for r in rows:
        key = ("loss" if r[0] == "out.loss" else "BN stats after" if r[0].startswith("after.")
               else "grad alpha/beta" if r[0] in ("grad.alpha", "grad.beta") else "grad weights")
        groups.setdefault(key, []).append(r)
    print("%-16s %7s %12s %12s %12s %12s" % ("group", "tensors", "segnas max", "segnas med", "torch32 max",
                                             "torch32 med"))
    for key, rs in groups.items():
        s_ = [r[1] for r in rs]
        t_ = [r[2] for r in rs]
        print("%-16s %7d %12.2e %12.2e %12.2e %12.2e" % (key, len(rs), max(s_), statistics.median(s_), max(t_),
                                                         statistics.median(t_)))
    for name in ("grad.alpha", "grad.beta"):
        r = [x for x in rows if x[0] == name][0]
        print("%s: segnas %.2e, torch32 %.2e (norm %.3e)" % (name, r[1], r[2], r[3]))
    worst = sorted(rows, key=lambda r: -r[1])[:args.worst]
    print("worst %d (segnas vs torch64; torch32 vs torch64; ||ref||):" % len(worst))
    for r in worst:
        print("  %.2e  %.2e  %.3e  %s" % (r[1], r[2], r[3], r[0]))
    fails = [r for r in rows if r[1] > args.tol]
    print("%s: %d of %d tensors above %.0e relative (segnas vs float64 torch); worst %.2e; float32 torch floor "
          "%.2e" % ("PASS" if not fails else "FAIL", len(fails), len(rows), args.tol, max(r[1] for r in rows),
                    max(r[2] for r in rows)))
    return 0 if not fails else 1


# ---- time --------------------------------------------------------------------
def ensure_tuned_env(args):
    want = {"GLIBC_TUNABLES": TUNABLES, "OPENBLAS_NUM_THREADS": str(args.threads)}
    env = os.environ
    if all(env.get(k) == v for k, v in want.items()) and "OPENBLAS_CORETYPE" not in env:
        return
    if env.get("SEGNAS_TORCH_REEXEC"):
        sys.exit("supernet_torch.py: could not set the tuned environment")
    new_env = dict(env, SEGNAS_TORCH_REEXEC="1", **want)
    new_env.pop("OPENBLAS_CORETYPE", None)
    os.execve(sys.executable, [sys.executable] + sys.argv, new_env)


def init_params(spec, seed, channels_last):
    g = torch.Generator().manual_seed(seed)
    P, weights, arch = {}, [], []
    for name, (shape, kind, init) in spec.items.items():
        if init[0] == "he":
            t = torch.randn(shape, generator=g) * math.sqrt(2.0 / init[1])
            if channels_last:
                t = t.contiguous(memory_format=torch.channels_last)
        elif init[0] == "arch":
            t = torch.randn(shape, generator=g) * 1e-3
        else:
            t = torch.full(shape, 1.0 if init[0] == "one" else 0.0)
        if kind != "buf":
            t.requires_grad_(True)
            (arch if kind == "arch" else weights).append(t)
        P[name] = t
    return P, weights, arch


def time_mode(args):
    if args.mode == "tuned":
        ensure_tuned_env(args)
    torch.set_num_threads(args.threads)
    cfg = Cfg(args.layers, 4, args.blocks, args.F, args.classes, args.stem)
    spec = build_spec(cfg)
    cl = args.mode == "tuned"
    P, weights, arch = init_params(spec, 1, cl)
    net = Supernet(cfg, P, training=True)
    opt_w = torch.optim.SGD(weights, lr=0.025, momentum=0.9, weight_decay=3e-4)
    opt_a = torch.optim.Adam(arch, lr=3e-3, weight_decay=1e-3)
    g = torch.Generator().manual_seed(3)
    x = torch.randn(args.batch, 3, args.crop, args.crop, generator=g)
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, args.classes, (args.batch, args.crop, args.crop), generator=g)

    def step(opt, frozen):
        for p in frozen:
            p.requires_grad_(False)
        opt.zero_grad(set_to_none=True)
        loss = F.cross_entropy(net.forward(x), y, ignore_index=255)
        loss.backward()
        opt.step()
        for p in frozen:
            p.requires_grad_(True)
        return loss.item()

    tw, ta = [], []
    iters = args.reps + 1 if args.reps > 1 else 1
    for _ in range(iters):
        t0 = time.perf_counter()
        step(opt_w, arch)
        t1 = time.perf_counter()
        loss = step(opt_a, weights)
        tw.append(t1 - t0)
        ta.append(time.perf_counter() - t1)
    if iters > 1:
        tw, ta = tw[1:], ta[1:]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"impl": "torch-" + args.mode, "height": args.crop, "width": args.crop, "layers": args.layers,
                      "F": args.F, "blocks": args.blocks, "batch": args.batch, "threads": args.threads,
                      "reps": len(tw), "weight_s": round(statistics.median(tw), 4),
                      "arch_s": round(statistics.median(ta), 4), "peak_rss_mib": round(rss, 1),
                      "weights": sum(p.numel() for p in weights), "loss": loss, "torch": torch.__version__}))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("parity")
    p.add_argument("file")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--worst", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    t = sub.add_parser("time")
    t.add_argument("--mode", choices=["shipped", "tuned"], default="shipped")
    t.add_argument("--crop", type=int, default=64)
    t.add_argument("--layers", type=int, default=12)
    t.add_argument("-F", type=int, default=8)
    t.add_argument("--blocks", type=int, default=5)
    t.add_argument("--classes", type=int, default=19)
    t.add_argument("--stem", type=int, default=64)
    t.add_argument("--batch", type=int, default=2)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    global torch, F
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        sys.exit("supernet_torch.py: PyTorch is missing for %s; run with /usr/bin/python3 (Debian python3-torch)"
                 % sys.executable)
    return parity(args) if args.cmd == "parity" else time_mode(args)


if __name__ == "__main__":
    sys.exit(main())
