"""The parity task set: one entry per request, `(name, yaml_text)`.

Each YAML is a SkyPilot task file (several documents = a chain). Kept as data so that
compare.py and the Rust snapshot test read the same requests.
"""

def _res(**fields):
    lines = ["resources:"]
    for k, v in fields.items():
        if isinstance(v, dict):
            lines.append(f"  {k}:")
            for kk, vv in v.items():
                lines.append(f"    {kk}: {vv}")
        elif isinstance(v, list):
            lines.append(f"  {k}:")
            for item in v:
                if isinstance(item, dict):
                    first = True
                    for kk, vv in item.items():
                        lines.append(f"    {'- ' if first else '  '}{kk}: {vv}")
                        first = False
                else:
                    lines.append(f"    - {item}")
        else:
            lines.append(f"  {k}: {v}")
    return "\n".join(lines) + "\nrun: echo hi\n"


TASKS = [
    ("default", "run: echo hi\n"),
    ("cpus-4", _res(cpus=4)),
    ("cpus-8", _res(cpus=8)),
    ("cpus-16plus", _res(cpus="16+")),
    ("cpus-2", _res(cpus=2)),
    ("cpus-32", _res(cpus=32)),
    ("cpus-96plus", _res(cpus="96+")),
    ("mem-16", _res(memory=16)),
    ("mem-64plus", _res(memory="64+")),
    ("mem-256plus", _res(memory="256+")),
    ("cpus8-mem64", _res(cpus=8, memory=64)),
    ("cpus4-mem2x", _res(cpus=4, memory="2x")),
    ("cpus16-mem8x", _res(cpus=16, memory="8x")),
    ("mem-8x", _res(memory="8x")),
    ("spot-default", _res(use_spot="true")),
    ("spot-cpus16", _res(cpus="16+", use_spot="true")),
    ("v100", _res(accelerators="V100")),
    ("v100-2", _res(accelerators="V100:2")),
    ("v100-4", _res(accelerators="V100:4")),
    ("v100-8", _res(accelerators="V100:8")),
    ("v100-spot", _res(accelerators="V100:1", use_spot="true")),
    ("t4", _res(accelerators="T4")),
    ("t4-4", _res(accelerators="T4:4")),
    ("t4-spot", _res(accelerators="T4", use_spot="true")),
    ("a100", _res(accelerators="A100")),
    ("a100-8", _res(accelerators="A100:8")),
    ("a100-80gb-8", _res(accelerators="A100-80GB:8")),
    ("a100-80gb-1", _res(accelerators="A100-80GB:1")),
    ("h100-8", _res(accelerators="H100:8")),
    ("h100-1", _res(accelerators="H100:1")),
    ("h100-spot-8", _res(accelerators="H100:8", use_spot="true")),
    ("l4", _res(accelerators="L4")),
    ("l4-4", _res(accelerators="L4:4")),
    ("l4-spot", _res(accelerators="L4:1", use_spot="true")),
    ("a10g", _res(accelerators="A10G")),
    ("a10g-4", _res(accelerators="A10G:4")),
    ("l40s", _res(accelerators="L40S")),
    ("p100", _res(accelerators="P100")),
    ("p4", _res(accelerators="P4")),
    ("k80", _res(accelerators="K80")),
    ("a10", _res(accelerators="A10")),
    ("tpu-v4-8", _res(accelerators="tpu-v4-8")),
    ("tpu-v5e-4", _res(accelerators="tpu-v5litepod-4")),
    ("tpu-v6e-8", _res(accelerators="tpu-v6e-8")),
    ("inferentia", _res(accelerators="Inferentia2")),
    ("trainium", _res(accelerators="Trainium")),
    ("v100-cpus16", _res(accelerators="V100", cpus="16+")),
    ("t4-mem64", _res(accelerators="T4", memory="64+")),
    ("aws-only", _res(infra="aws")),
    ("gcp-only", _res(infra="gcp")),
    ("azure-only", _res(infra="azure")),
    ("aws-region", _res(infra="aws/eu-west-1")),
    ("gcp-region", _res(infra="gcp/europe-west4")),
    ("gcp-zone", _res(infra="gcp/us-central1/us-central1-c")),
    ("azure-region", _res(infra="azure/westeurope")),
    ("aws-zone-spot", _res(infra="aws/us-east-1/use1-az4", use_spot="true")),
    ("gcp-a100-region", _res(infra="gcp/us-central1", accelerators="A100:1")),
    ("aws-v100", _res(infra="aws", accelerators="V100")),
    ("azure-v100", _res(infra="azure", accelerators="V100")),
    ("azure-t4", _res(infra="azure", accelerators="T4")),
    ("pinned-type-aws", _res(instance_type="p3.2xlarge")),
    ("pinned-type-gcp", _res(instance_type="n2-standard-16")),
    ("pinned-type-azure", _res(instance_type="Standard_NC24ads_A100_v4")),
    ("pinned-a2", _res(instance_type="a2-highgpu-1g")),
    ("pinned-type-spot", _res(instance_type="g5.xlarge", use_spot="true")),
    ("pinned-n1-v100", _res(instance_type="n1-standard-8", accelerators="V100:1")),
    ("any-of", _res(any_of=[{"accelerators": "A100:1"}, {"accelerators": "V100:1"}, {"accelerators": "T4:1"}])),
    ("any-of-cloud", _res(any_of=[{"infra": "aws"}, {"infra": "azure"}])),
    ("ordered", _res(ordered=[{"accelerators": "H100:8"}, {"accelerators": "A100:8"}])),
    ("ordered-fallback", _res(ordered=[{"accelerators": "V100:16"}, {"accelerators": "V100:8"}])),
    ("acc-set", _res(accelerators="{A10G, L4}")),
    ("acc-list", _res(accelerators="[T4, V100]")),
    ("num-nodes", "num_nodes: 4\n" + _res(accelerators="V100:1")),
    ("num-nodes-cpu", "num_nodes: 3\n" + _res(cpus="4+")),
    ("max-cost", _res(cpus="4+", max_hourly_cost=0.2)),
    ("max-cost-gpu", _res(accelerators="T4", max_hourly_cost=1.0)),
    ("disk-tier-high-azure", _res(infra="azure", disk_tier="high")),
    ("fractional", _res(accelerators="T4:0.5")),
    ("infeasible-cpus", _res(cpus=7)),
    ("infeasible-gpu-count", _res(accelerators="V100:3")),
    ("infeasible-gpu-name", _res(accelerators="A1000")),
    ("infeasible-max-cost", _res(accelerators="H100:8", max_hourly_cost=1)),
    ("infeasible-mem", _res(cpus=2, memory=512)),
    ("infeasible-region-gpu", _res(infra="aws/eu-west-1", accelerators="H100:8")),
    ("chain", "name: a\n" + _res(cpus="4+") + "outputs:\n  s3://x: 100\n---\nname: b\n" + _res(accelerators="V100")),
    ("chain-3", "name: a\n" + _res(infra="gcp") + "outputs:\n  gs://x: 1000\n---\nname: b\n" + _res(cpus="8+") + "---\nname: c\n" + _res(accelerators="T4")),
]
