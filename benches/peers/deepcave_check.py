"""Opens DeepCAVE run folders written by archsearch (e.g. RUN/deepcave/*) with DeepCAVE's own
reader, checks every configuration against the run's configspace.json with ConfigSpace, and
prints the number of trials and the best cost of each. See benches/peers/README.md.

    benches/peers/.venv/bin/python benches/peers/deepcave_check.py RUN/deepcave/*
"""
import sys
from pathlib import Path
import ConfigSpace
from ConfigSpace import Configuration
from deepcave.runs.converters.deepcave import DeepCAVERun

for d in sys.argv[1:]:
    path = Path(d)
    run = DeepCAVERun.from_path(path)
    cs = run.configspace
    # every config is a valid configuration of the space
    for cid, cfg in run.configs.items():
        Configuration(cs, values=cfg).check_valid_configuration()
    obj = run.get_objectives()
    costs = [t.costs[0] for t in run.history if t.costs[0] is not None]
    best = max(costs) if obj[0].optimize == "upper" else min(costs)
    inc, _ = run.get_incumbent(objectives=obj[0])
    print(f"{path.name}: {len(run.history)} trials, {len(run.configs)} configs, "
          f"{len(cs)} hyperparameters, objectives {[o.name for o in obj]}, best {obj[0].name} {best}, "
          f"budgets {run.get_budgets()}, origins {sorted(set(map(str, run.origins.values())))}")
