#!/usr/bin/env python3
"""Differential check of Sky's task parser against SkyPilot 0.14.1 (run by hand, not in CI).

For every valid fixture under crates/sky-core/tests/fixtures/tasks/valid/, parse it with
SkyPilot (`load_chain_dag_from_yaml`, then `Resources.validate()` as `sky launch` does, which
canonicalises accelerators and infers cloud/region from the catalog) and compare the meaning with
what Sky's parser produced (its insta snapshot of the same file). For every invalid fixture,
report whether SkyPilot rejects it too, and with what message.

Usage (SkyPilot's own interpreter, with its offline catalog):
    /root/.cache/skypilot-peer/bin/python tests/peer/parse_tasks.py [--verbose]

Exit status 1 when a valid fixture means something different to the two.
"""
import glob
import json
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
FIXTURES = os.path.join(ROOT, 'crates/sky-core/tests/fixtures/tasks')
SNAPSHOTS = os.path.join(ROOT, 'crates/sky-core/src/task/snapshots')


def amount(text):
    """'8+' / '4x' / '16.0' -> (8.0, '+') etc."""
    if text is None:
        return None
    text = str(text)
    suffix = text[-1] if text[-1] in '+x' else ''
    return (float(text.rstrip('+x')), suffix)


def peer_option(r):
    image = None
    if r.image_id:
        image = {str(k): v for k, v in r.image_id.items()}
    return {
        'cloud': str(r.cloud).lower() if r.cloud is not None else None,
        'region': r.region,
        'zone': r.zone,
        'instance_type': r.instance_type,
        # The requested values, not the properties, which fill in the instance type's shape.
        'accelerators': {k: float(v) for k, v in (r._accelerators or {}).items()} or None,
        'cpus': amount(r._cpus),
        'memory': amount(r._memory),
        'use_spot': r.use_spot,
        'disk_size': r.disk_size,
        'disk_tier': r.disk_tier.value if r.disk_tier else None,
        'ports': list(r.ports or []),
        'image_id': image,
        'labels': dict(r.labels or {}),
        'max_hourly_cost': r.max_hourly_cost,
    }


def sky_option(o):
    acc = o['accelerators']
    cpus = o['cpus']
    mem = o['memory']
    if mem is not None:
        (kind, a), = mem.items()
        mem = (a['value'], 'x' if kind == 'PerCpu' else ('+' if a['at_least'] else ''))
    ports = [str(p['start']) if p['start'] == p['end'] else f"{p['start']}-{p['end']}" for p in o['ports']]
    image = o['image_id']
    if image is not None:
        if 'Any' in image:
            image = {str(o['placement']['region']): image['Any']}
        else:
            image = image['PerRegion']
    return {
        'cloud': o['placement']['cloud'],
        'region': o['placement']['region'],
        'zone': o['placement']['zone'],
        'instance_type': o['instance_type'],
        'accelerators': {acc['name']: float(acc['count'])} if acc else None,
        'cpus': (cpus['value'], '+' if cpus['at_least'] else '') if cpus else None,
        'memory': tuple(mem) if mem else None,
        'use_spot': o['use_spot'],
        'disk_size': o['disk_size_gb'],
        'disk_tier': o['disk_tier'],
        'ports': ports,
        'image_id': image,
        'labels': o['labels'],
        'max_hourly_cost': o['max_hourly_cost'],
    }


def canonical(options, ordered):
    options = [json.dumps(o, sort_keys=True) for o in options]
    return options if ordered else sorted(options)


def peer_tasks(path):
    from sky.utils import dag_utils
    dag = dag_utils.load_chain_dag_from_yaml(path)
    out = []
    for task in dag.tasks:
        task.validate_name()
        for r in task.resources:
            r.validate()
        ordered = isinstance(task.resources, list)
        out.append({
            'name': task.name,
            'num_nodes': task.num_nodes,
            'envs': dict(task.envs),
            'secrets': sorted(task.secrets),
            'file_mounts': sorted((task.file_mounts or {}).keys()) + sorted(task.storage_mounts.keys()),
            'inputs': [task.inputs, task.estimated_inputs_size_gigabytes] if task.inputs else None,
            'outputs': [task.outputs, task.estimated_outputs_size_gigabytes] if task.outputs else None,
            'ordered': ordered and len(task.resources) > 1,
            'resources': canonical([peer_option(r) for r in task.resources], ordered),
        })
    return out


def sky_tasks(stem):
    with open(os.path.join(SNAPSHOTS, f'sky_core__task__tests__valid__{stem}.snap')) as f:
        chain = json.loads(f.read().split('---\n', 2)[2])
    out = []
    for t in chain['tasks']:
        ordered = t['resources']['kind'] == 'ordered'
        out.append({
            'name': t['name'],
            'num_nodes': t['num_nodes'],
            'envs': t['envs'],
            'secrets': sorted(t['secrets']),
            'file_mounts': sorted(k for k, v in t['file_mounts'].items() if 'copy' in v)
                           + sorted(k for k, v in t['file_mounts'].items() if 'storage' in v),
            'inputs': [t['inputs']['location'], t['inputs']['estimated_size_gb']] if t['inputs'] else None,
            'outputs': [t['outputs']['location'], t['outputs']['estimated_size_gb']] if t['outputs'] else None,
            'ordered': ordered and len(t['resources']['options']) > 1,
            'resources': canonical([sky_option(o) for o in t['resources']['options']], ordered),
        })
    return out


def normalise_disk(tasks):
    # SkyPilot reports an unstated disk_size as None; Sky as its default, 256.
    for t in tasks:
        res = []
        for o in t['resources']:
            o = json.loads(o)
            o['disk_size'] = o['disk_size'] or 256
            res.append(json.dumps(o, sort_keys=True))
        t['resources'] = res if t['ordered'] else sorted(res)
    return tasks


def main():
    verbose = '--verbose' in sys.argv
    differ = 0
    for path in sorted(glob.glob(os.path.join(FIXTURES, 'valid', '*.yaml'))):
        stem = os.path.basename(path)[:-5]
        try:
            peer = normalise_disk(peer_tasks(path))
        except Exception as e:  # pylint: disable=broad-except
            print(f'PEER REJECTS {stem}: {type(e).__name__}: {e}')
            differ += 1
            continue
        ours = normalise_disk(sky_tasks(stem))
        if peer == ours:
            print(f'same  {stem}: {sum(len(t["resources"]) for t in ours)} resource option(s)')
            if verbose:
                print(json.dumps(ours, indent=1))
        else:
            differ += 1
            print(f'DIFF  {stem}')
            print('  skypilot:', json.dumps(peer, indent=1))
            print('  sky:     ', json.dumps(ours, indent=1))
    for path in sorted(glob.glob(os.path.join(FIXTURES, 'invalid', '*.yaml'))):
        stem = os.path.basename(path)[:-5]
        try:
            peer_tasks(path)
            print(f'peer accepts  {stem} (Sky rejects)')
        except BaseException as e:  # pylint: disable=broad-except
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            print(f'both reject   {stem}: {type(e).__name__}: {msg[:150]}')
    sys.exit(1 if differ else 0)


if __name__ == '__main__':
    main()
