// Test data shared by the UI's unit tests.
import type { ClusterView } from "./backend";

/// An UP local cluster named `name`, with `over` replacing any of its fields.
export function cluster(name: string, over: Partial<ClusterView> = {}): ClusterView {
  return {
    name,
    status: "UP",
    cloud: "local",
    region: "local",
    zone: null,
    instance_type: "local",
    num_nodes: 1,
    use_spot: false,
    hourly_price: 0,
    launched_at: 1000,
    last_use_at: 1000,
    last_use_command: "sky launch",
    autostop: null,
    head_ip: null,
    unchecked: null,
    ...over,
  };
}
