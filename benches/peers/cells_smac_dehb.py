"""SMAC3 and DEHB on an archsearch cell table, side by side with `archsearch cells search`.

Reads a table as archsearch writes it (NAME.csv.gz, one row per cell, training seed and epoch,
and NAME.json beside it) and runs SMAC3 (its HPO facade: random forest, log expected
improvement, Sobol initial design, one random configuration in five interleaved) and DEHB
(Awad et al. 2021: differential evolution in Hyperband's brackets, eta 3) on it, in simulated
time as archsearch does (docs/algorithms.md §7):

- a query of cell C at E epochs answers with the dev accuracy after E epochs of one training
  seed, the one archsearch's evaluator picks (splitmix64(search seed ^ splitmix64(class index))
  modulo the table's seeds, class index = the index of the table's representative of C's class
  of isomorphic cells), and costs the training seconds of those E epochs;
- a search stops before the query that would take it past --budget simulated seconds;
- the incumbent is the cell of the best dev accuracy seen, each cell judged at the highest
  budget it was queried at; regret = the table's best mean final test accuracy minus the
  incumbent's mean final test accuracy.

Writes a JSON (--out) with, per optimiser and seed, regret against simulated time (one point
per query), the incumbent's dev accuracy at the end, how many queries repeated a functional
class already queried (at any budget), and the real seconds per suggestion (ask + tell, table look-ups excluded), and the
mean and standard error of the final regret over seeds.

    python benches/peers/cells_smac_dehb.py --table tables/digits.csv.gz --budget 20000 \
        --seeds 10 --out /tmp/peers.json
    python benches/peers/cells_smac_dehb.py --make-toy /tmp/toy.csv.gz   # a toy table to try it

Setup: see benches/peers/README.md (Python 3.10 venv with smac and dehb).
"""

import argparse
import csv
import gzip
import io
import json
import math
import os
import sys
import tempfile
import time

OPS = ["none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3"]
EDGES = [(1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2)]  # (to, from), NAS-Bench-201's order
NAMES = [f"{t}<-{f}" for t, f in EDGES]
MASK = (1 << 64) - 1


def splitmix64(x):
    z = (x + 0x9E3779B97F4A7C15) & MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
    return z ^ (z >> 31)


def cell_string(ops):
    o = ops
    return (f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|")


def parse_cell(text):
    nodes = text.strip("|").split("|+|")
    ops = []
    for node in nodes:
        ops += [edge.split("~")[0] for edge in node.split("|")]
    return ops


def cell_index(ops):
    i = 0
    for op in ops:
        i = i * 5 + OPS.index(op)
    return i


def canonical(ops):
    """archsearch's table key (isomorphism::functional in src/cells/isomorphism.rs): each node a
    sorted multiset of terms, zeros dropped, sums flattened; a cell with a cut output is "zero"."""
    values = [["0"]]
    for to in range(1, 4):
        terms = []
        for frm in range(to):
            source = values[frm]
            op = ops[EDGES.index((to, frm))]
            if not source or op == "none":
                continue
            if op == "skip_connect":
                terms.extend(source)
            else:
                terms.append(f"{op}({'+'.join(source)})")
        terms.sort()
        values.append(terms)
    return "+".join(values[-1]) if values[-1] else "zero"


def all_cells():
    for i in range(5 ** 6):
        ops, rest = [], i
        for _ in range(6):
            ops.append(OPS[rest % 5])
            rest //= 5
        yield ops[::-1]


class Table:
    def __init__(self, path):
        meta_path = path[: -len(".csv.gz")] + ".json" if path.endswith(".csv.gz") else path + ".json"
        with open(meta_path) as f:
            self.meta = json.load(f)
        self.epochs = self.meta["epochs"]
        self.seeds = self.meta["seeds"]
        self.budgets = self.meta["budgets"]
        runs = {}  # cell string -> [seed][epoch-1] = (dev, test, seconds)
        with gzip.open(path, "rt", newline="") as f:
            for row in csv.DictReader(f):
                per = runs.setdefault(row["cell"], [[None] * self.epochs for _ in range(self.seeds)])
                per[int(row["seed"])][int(row["epoch"]) - 1] = (
                    float(row["dev_accuracy"]), float(row["test_accuracy"]), float(row["seconds"]))
        self.by_form = {}
        for cell, per in runs.items():
            ops = parse_cell(cell)
            self.by_form[canonical(ops)] = (cell_index(ops), per)
        self.mean_test = {form: sum(run[-1][1] for run in per) / len(per)
                          for form, (_, per) in self.by_form.items()}
        self.optimum = max(self.mean_test.values())
        self.form_of = {}

    def form(self, ops):
        key = tuple(ops)
        if key not in self.form_of:
            self.form_of[key] = canonical(ops)
        return self.form_of[key]


class Evaluator:
    """One search's view of the table (archsearch's TableEvaluator)."""

    def __init__(self, table, search_seed):
        self.t = table
        self.search_seed = search_seed
        self.seconds = 0.0
        self.seen = {}  # cell index -> (epochs, dev)
        self.incumbent = None  # (cell index, form, dev)
        self.forms = set()  # functional classes queried
        self.repeats = 0  # queries of a class queried before

    def epochs(self, fidelity):
        if fidelity is None:
            return self.t.epochs
        return min(max(int(round(fidelity)), 1), self.t.epochs)

    def lookup(self, ops, epochs):
        form = self.t.form(ops)
        rep, per = self.t.by_form[form]
        seed = splitmix64(self.search_seed ^ splitmix64(rep)) % self.t.seeds
        run = per[seed]
        return run[epochs - 1][0], sum(r[2] for r in run[:epochs]), form

    def see(self, ops, epochs, dev, form):
        i = cell_index(ops)
        self.repeats += form in self.forms
        self.forms.add(form)
        old = self.seen.get(i)
        if old is None or epochs >= old[0]:
            self.seen[i] = (epochs, dev)
        judged = self.seen[i][1]
        inc = self.incumbent
        if inc is not None and inc[0] == i and judged < inc[2]:
            best = None
            for j, (_, d) in self.seen.items():
                if best is None or not (best[1] > d or (best[1] == d and best[0] < j)):
                    best = (j, d)
            j = best[0]
            ops_j = [OPS[(j // 5 ** (5 - e)) % 5] for e in range(6)]
            self.incumbent = (j, self.t.form(ops_j), best[1])
        elif inc is not None and judged <= inc[2]:
            pass
        else:
            self.incumbent = (i, form, judged)

    def regret(self):
        return self.t.optimum - self.t.mean_test[self.incumbent[1]]


def configspace(seed):
    import ConfigSpace as CS
    cs = CS.ConfigurationSpace(seed=seed)
    for name in NAMES:
        cs.add(CS.CategoricalHyperparameter(name, OPS, default_value="none"))
    return cs


def run_smac(table, seed, budget, max_queries):
    from smac import HyperparameterOptimizationFacade, Scenario
    from smac.runhistory.dataclasses import TrialValue
    out = tempfile.mkdtemp(prefix="smac-")
    scenario = Scenario(configspace(seed), deterministic=True, n_trials=max_queries, seed=seed,
                        output_directory=out)
    smac = HyperparameterOptimizationFacade(
        scenario, lambda config, seed=0: 0.0, overwrite=True, logging_level=40)
    ev = Evaluator(table, seed)
    times, regrets, suggest = [], [], []
    for _ in range(max_queries):
        t0 = time.perf_counter()
        info = smac.ask()
        t1 = time.perf_counter()
        ops = [info.config[n] for n in NAMES]
        epochs = ev.epochs(None)
        dev, cost, form = ev.lookup(ops, epochs)
        if ev.seconds + cost > budget:
            break
        ev.seconds += cost
        ev.see(ops, epochs, dev, form)
        t2 = time.perf_counter()
        smac.tell(info, TrialValue(cost=1.0 - dev, time=cost))
        t3 = time.perf_counter()
        suggest.append((t1 - t0) + (t3 - t2))
        times.append(ev.seconds)
        regrets.append(ev.regret())
    return times, regrets, suggest, (ev.incumbent[2] if ev.incumbent else None), ev.repeats


def run_dehb(table, seed, budget, max_queries):
    from dehb import DEHB
    out = tempfile.mkdtemp(prefix="dehb-")
    cs = configspace(seed)
    dehb = DEHB(f=lambda config, fidelity, **kw: {"fitness": 0.0, "cost": 0.0}, cs=cs,
                dimensions=len(NAMES), min_fidelity=table.budgets[0], max_fidelity=table.epochs,
                eta=3, n_workers=1, seed=seed, output_path=out, save_freq="end",
                log_level="ERROR")
    ev = Evaluator(table, seed)
    times, regrets, suggest = [], [], []
    for _ in range(max_queries):
        t0 = time.perf_counter()
        job = dehb.ask()  # with a ConfigSpace, job["config"] is a Configuration
        t1 = time.perf_counter()
        ops = [job["config"][n] for n in NAMES]
        epochs = ev.epochs(job["fidelity"])
        dev, cost, form = ev.lookup(ops, epochs)
        if ev.seconds + cost > budget:
            break
        ev.seconds += cost
        ev.see(ops, epochs, dev, form)
        t2 = time.perf_counter()
        dehb.tell(job, {"fitness": 1.0 - dev, "cost": cost})
        t3 = time.perf_counter()
        suggest.append((t1 - t0) + (t3 - t2))
        times.append(ev.seconds)
        regrets.append(ev.regret())
    return times, regrets, suggest, (ev.incumbent[2] if ev.incumbent else None), ev.repeats


def make_toy(path):
    """A toy table in archsearch's layout: test = share of 3x3 convolutions (plus a small
    per-class offset), dev below it growing with the epochs, 12 epochs, 2 seeds."""
    epochs, seeds, budgets = 12, 2, [1, 2, 4, 8, 12]
    seen = set()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["cell", "seed", "epoch", "train_accuracy", "dev_accuracy", "test_accuracy",
                "seconds", "params", "flops"])
    for ops in all_cells():
        form = canonical(ops)
        if form in seen:
            continue
        seen.add(form)
        convs = sum(op == "nor_conv_3x3" for op in ops) / 6
        offset = (splitmix64(cell_index(ops)) % 1000) / 1e5
        for s in range(seeds):
            for e in range(1, epochs + 1):
                test = 0.5 + 0.4 * convs + offset
                dev = test * (1 - 0.5 ** e) - 0.002 * s
                w.writerow([cell_string(ops), s, e, dev, dev, test, 1.0 + convs, 0, 0])
    with gzip.open(path, "wt") as f:
        f.write(buf.getvalue())
    meta = {"dataset": "toy", "epochs": epochs, "seeds": seeds, "budgets": budgets}
    with open(path[: -len(".csv.gz")] + ".json", "w") as f:
        json.dump(meta, f)
    print(f"wrote {path}: {len(seen)} classes")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--table", help="NAME.csv.gz with NAME.json beside it")
    ap.add_argument("--budget", type=float, help="simulated seconds per search")
    ap.add_argument("--seeds", type=int, default=10, help="searches per optimiser")
    ap.add_argument("--seed", type=int, default=0, help="first search seed")
    ap.add_argument("--optimizers", default="smac,dehb")
    ap.add_argument("--max-queries", type=int, default=5000, help="queries per search at most")
    ap.add_argument("--out", default="peers.json")
    ap.add_argument("--make-toy", metavar="PATH.csv.gz", help="write a toy table and stop")
    args = ap.parse_args()
    if args.make_toy:
        make_toy(args.make_toy)
        return
    if not args.table or not args.budget:
        ap.error("--table and --budget are needed")
    table = Table(args.table)
    runners = {"smac": run_smac, "dehb": run_dehb}
    result = {"table": args.table, "budget_seconds": args.budget, "optimum": table.optimum,
              "seeds": list(range(args.seed, args.seed + args.seeds)), "optimizers": {}}
    for name in args.optimizers.split(","):
        runs = []
        for seed in result["seeds"]:
            wall = time.perf_counter()
            times, regrets, suggest, dev, repeats = runners[name](table, seed, args.budget, args.max_queries)
            runs.append({"seed": seed, "simulated_seconds": times, "regret": regrets,
                         "queries": len(times), "final_regret": regrets[-1] if regrets else None,
                         "final_incumbent_dev": dev, "repeated_class_queries": repeats,
                         "seconds_per_suggestion": sum(suggest) / max(len(suggest), 1),
                         "wall_seconds": time.perf_counter() - wall})
            print(f"{name} seed {seed}: {len(times)} queries, final regret "
                  f"{runs[-1]['final_regret']:.4f}, {runs[-1]['seconds_per_suggestion'] * 1e3:.2f} ms "
                  f"per suggestion", file=sys.stderr)
        finals = [r["final_regret"] for r in runs if r["final_regret"] is not None]
        mean = sum(finals) / len(finals)
        se = (math.sqrt(sum((x - mean) ** 2 for x in finals) / (len(finals) - 1) / len(finals))
              if len(finals) > 1 else 0.0)
        result["optimizers"][name] = {
            "runs": runs, "final_regret_mean": mean, "final_regret_se": se,
            "final_test_mean": table.optimum - mean,
            "seconds_per_suggestion_mean": sum(r["seconds_per_suggestion"] for r in runs) / len(runs)}
    with open(args.out, "w") as f:
        json.dump(result, f)
    for name, o in result["optimizers"].items():
        print(f"{name}: final regret {o['final_regret_mean']:.4f} ± {o['final_regret_se']:.4f}, "
              f"{o['seconds_per_suggestion_mean'] * 1e3:.2f} ms per suggestion")


if __name__ == "__main__":
    main()
