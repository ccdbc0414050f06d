#!/usr/bin/env python3
"""Compare Sky's optimizer with SkyPilot 0.14.1's on the task set in tasks.py.

Run by hand (never by CI), with SkyPilot's venv set up by shared/peer/setup_skypilot.sh:

    /root/.cache/skypilot-peer/bin/python tests/peer/compare.py [--sky target/release/sky] \
        [--write tests/peer/parity.json]

For each task it runs SkyPilot's optimizer in-process and `sky launch --dryrun -o json` (with a
fresh SKY_HOME, so every cloud is allowed), and checks: same cloud, instance type and spot flag;
a region/zone among SkyPilot's equally cheapest placements; the same hourly price to $0.0001;
a refusal where SkyPilot refuses. `--write` freezes the agreed answers for the Rust parity test.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from tasks import TASKS  # noqa: E402


def peer_plan(yaml_path):
    """SkyPilot's choice per task (and the dag, to check placements later), or its refusal."""
    from sky import optimizer
    from sky.utils import common, dag_utils
    try:
        dag = dag_utils.load_chain_dag_from_yaml(yaml_path)
        optimizer.Optimizer.optimize(dag, minimize=common.OptimizeTarget.COST, quiet=True)
    except Exception as e:  # a refusal
        return {"error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    out = []
    for task in dag.tasks:
        r = task.best_resources
        out.append({
            "cloud": str(r.cloud).lower(),
            "region": r.region,
            "zone": r.zone,
            "instance_type": r.instance_type,
            "use_spot": bool(r.use_spot),
            "hourly_price": round(r.get_cost(3600), 6),
        })
    return {"tasks": out, "dag": dag}


def equally_cheap(dag, index, region, zone):
    """Whether SkyPilot prices Sky's placement of task `index` the same as its own choice."""
    from sky import optimizer
    task = dag.tasks[index]
    best = task.best_resources.get_cost(3600)
    launchables, _, _, _ = optimizer._fill_in_launchable_resources(task, None, quiet=True)
    for lst in launchables.values():
        for x in lst:
            if (str(x.cloud) == str(task.best_resources.cloud) and x.region == region and
                    x.zone == zone and x.instance_type == task.best_resources.instance_type):
                return abs(x.get_cost(3600) - best) < 1e-9
    return False


def sky_plan(sky_bin, yaml_path, home):
    env = dict(os.environ, SKY_HOME=home, NO_COLOR="1")
    p = subprocess.run([sky_bin, "launch", "--dryrun", "-y", "-o", "json", yaml_path],
                       capture_output=True, text=True, env=env)
    try:
        body = json.loads(p.stdout)
    except json.JSONDecodeError:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[:300]}"}
    if "error" in body:
        return {"error": f"{body['error']['code']}: {body['error']['message'].splitlines()[0]}"}
    return {"tasks": [t["chosen"] for t in body["tasks"]]}


def compare(peer, ours):
    if "error" in peer or "error" in ours:
        if "error" in peer and "error" in ours:
            return []
        return [f"refusal differs: skypilot={peer.get('error')} sky={ours.get('error')}"]
    diffs = []
    if len(peer["tasks"]) != len(ours["tasks"]):
        return [f"task count {len(peer['tasks'])} vs {len(ours['tasks'])}"]
    for i, (p, o) in enumerate(zip(peer["tasks"], ours["tasks"])):
        for key in ("cloud", "instance_type", "use_spot"):
            if p[key] != o[key]:
                diffs.append(f"task {i}: {key} skypilot={p[key]} sky={o[key]}")
        if abs(p["hourly_price"] - o["hourly_price"]) > 1e-4:
            diffs.append(f"task {i}: price skypilot={p['hourly_price']} sky={o['hourly_price']}")
        same_place = (p["region"], p["zone"]) == (o["region"], o["zone"])
        if not same_place and not equally_cheap(peer["dag"], i, o["region"], o["zone"]):
            diffs.append(f"task {i}: placement {o['region']}/{o['zone']} is not as cheap as "
                         f"skypilot's {p['region']}/{p['zone']}")
    return diffs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sky", default="target/release/sky")
    ap.add_argument("--write", help="freeze agreed answers to this JSON file")
    ap.add_argument("--only", help="run only tasks whose name contains this")
    args = ap.parse_args()
    agreed, failed = {}, 0
    peer_secs = sky_secs = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        home = os.path.join(tmp, "sky-home")
        os.makedirs(home)
        for name, text in TASKS:
            if args.only and args.only not in name:
                continue
            path = os.path.join(tmp, f"{name}.yaml")
            with open(path, "w") as f:
                f.write(text)
            t0 = time.time()
            peer = peer_plan(path)
            t1 = time.time()
            ours = sky_plan(args.sky, path, home)
            t2 = time.time()
            peer_secs += t1 - t0
            sky_secs += t2 - t1
            diffs = compare(peer, ours)
            if diffs:
                failed += 1
                print(f"DIFF {name}:", flush=True)
                for d in diffs:
                    print(f"    {d}")
            else:
                print(f"ok   {name}: {summary(ours)}", flush=True)
                agreed[name] = {"yaml": text, "plan": ours}
                if args.write:
                    write(args.write, agreed)
    total = len(agreed) + failed
    print(f"\n{len(agreed)}/{total} agree ({100.0 * len(agreed) / max(total, 1):.1f}%); "
          f"skypilot in-process {peer_secs:.1f}s, sky processes {sky_secs:.1f}s")
    if args.write:
        write(args.write, agreed)


def write(path, agreed):
    with open(path, "w") as f:
        json.dump(agreed, f, indent=1, sort_keys=True)
        f.write("\n")


def summary(plan):
    if "error" in plan:
        return "refused (" + plan["error"][:70] + ")"
    return "; ".join(f"{t['cloud']} {t['instance_type']} {t['region']}/{t['zone']} "
                     f"spot={t['use_spot']} ${t['hourly_price']:.4f}" for t in plan["tasks"])


if __name__ == "__main__":
    main()
