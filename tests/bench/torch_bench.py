#!/usr/bin/python3
"""PyTorch reference for tests/bench/bench_train.c: the same models, batch, threads and optimiser.

One training step is optimizer.zero_grad(), forward, cross_entropy, backward, optimizer.step()
(SGD momentum 0.9, Nesterov, weight decay 5e-4) on random normalised 1x28x28 inputs with random
labels over 10 classes. After warm-up a block of steps lasting at least --min-time seconds is
timed --reps times; the median gives images/second. Results are printed as "BENCH {json}"
lines like bench_train's. Run with Debian's /usr/bin/python3 (python3-torch); without torch
it prints "skipped: python3-torch not installed" and exits 0.

--profile additionally prints torch.autograd.profiler's per-operator table for one step of
each model (not used by run.sh; for comparing per-layer costs by hand).
"""
import argparse
import json
import statistics
import sys
import time


def emit(obj):
    print("BENCH " + json.dumps(obj, separators=(",", ":")), flush=True)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="mlp,lenet5,resnet20")
    p.add_argument("--reps", type=int, default=7)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--min-time", type=float, default=0.3,
                   help="seconds per timed block of steps")
    p.add_argument("--profile", action="store_true",
                   help="print the autograd profiler's operator table for one step")
    return p.parse_args()


def build(name, nn):
    """The architectures of src/models.c for 1x28x28 inputs and 10 classes."""
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(),
                             nn.Linear(300, 100), nn.ReLU(), nn.Linear(100, 10))
    if name == "lenet5":
        return nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
            nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2), nn.Flatten(),
            nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
    if name in ("resnet20", "resnet32", "resnet56"):
        blocks = {"resnet20": 3, "resnet32": 5, "resnet56": 9}[name]

        class Block(nn.Module):
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout)
                self.relu = nn.ReLU()
                self.shortcut = nn.Identity()
                if stride != 1 or cin != cout:  # option B: 1x1 conv + BN projection
                    self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False),
                                                  nn.BatchNorm2d(cout))

            def forward(self, x):
                y = self.relu(self.bn1(self.conv1(x)))
                y = self.bn2(self.conv2(y))
                return self.relu(y + self.shortcut(x))

        layers = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()]
        cin = 16
        for s, width in enumerate((16, 32, 64)):
            for b in range(blocks):
                layers.append(Block(cin, width, 2 if s > 0 and b == 0 else 1))
                cin = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10)]
        return nn.Sequential(*layers)
    raise SystemExit(f"torch_bench: unknown model '{name}'")


def main():
    args = parse_args()
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        print("skipped: python3-torch not installed (run with /usr/bin/python3 on Debian; "
              "apt-get install python3-torch)")
        emit({"kind": "skipped", "impl": "torch", "reason": "python3-torch not installed"})
        return 0

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    emit({"kind": "env", "impl": "torch", "torch_version": torch.__version__,
          "threads": torch.get_num_threads(), "batch": args.batch, "reps": args.reps,
          "mkldnn": bool(torch.backends.mkldnn.is_available()),
          "cpu_capability": torch.backends.cpu.get_cpu_capability()
          if hasattr(torch.backends, "cpu") else "unknown"})
    print(f"torch bench: torch {torch.__version__}, {torch.get_num_threads()} threads", flush=True)

    for name in args.models.split(","):
        model = build(name, nn)
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, nesterov=True,
                              weight_decay=5e-4)
        x = torch.randn(args.batch, 1, 28, 28)
        y = torch.randint(0, 10, (args.batch,))
        nparams = sum(p.numel() for p in model.parameters())

        def step():
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        for _ in range(2):
            step()
        t0 = time.perf_counter()
        step()
        est = time.perf_counter() - t0
        steps = max(1, int(-(-args.min_time // max(est, 1e-6))))
        times = []
        loss = None
        for _ in range(args.reps):
            t0 = time.perf_counter()
            for _ in range(steps):
                loss = step()
            times.append((time.perf_counter() - t0) / steps)
        med, best = statistics.median(times), min(times)
        print(f"{name}: {nparams} parameters, batch {args.batch}, {args.threads} threads\n"
              f"  step: median {1e3 * med:.2f} ms (best {1e3 * best:.2f}) over {args.reps} reps "
              f"of {steps} steps = {args.batch / med:.0f} img/s", flush=True)
        emit({"kind": "step", "impl": "torch", "model": name, "batch": args.batch,
              "threads": args.threads, "reps": args.reps, "steps_per_rep": steps,
              "median_ms": round(1e3 * med, 4), "min_ms": round(1e3 * best, 4),
              "img_per_s": round(args.batch / med, 2), "loss": round(float(loss), 5)})
        if args.profile:
            with torch.autograd.profiler.profile() as prof:
                for _ in range(3):
                    step()
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25),
                  flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
