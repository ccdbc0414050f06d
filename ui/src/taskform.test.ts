import { describe, expect, it } from "vitest";
import { emptyForm, formToYaml, yamlToForm } from "./taskform";

describe("task form <-> yaml", () => {
  it("writes the form as SkyPilot task YAML", () => {
    const form = { ...emptyForm(), name: "train", run: "python train.py\necho done\n", num_nodes: "2", accelerators: "A100:1", use_spot: true };
    const text = formToYaml(form, "");
    expect(text).toContain("name: train");
    expect(text).toContain("num_nodes: 2");
    expect(text).toContain("resources:\n  accelerators: A100:1\n  use_spot: true");
    expect(text).toMatch(/run: \|\n {2}python train.py\n {2}echo done/);
  });

  it("reads back what it wrote", () => {
    const form = { ...emptyForm(), name: "n", cpus: "4+", memory: "16+", cloud: "gcp", region: "us-central1", setup: "pip install x" };
    const { form: back, errors } = yamlToForm(formToYaml(form, ""));
    expect(errors).toEqual([]);
    expect(back).toEqual(form);
  });

  it("keeps comments and keys the form does not own", () => {
    const previous = "# my task\nname: a\nenvs:\n  FOO: bar\nresources:\n  disk_size: 100\n";
    const text = formToYaml({ ...emptyForm(), name: "b", cpus: "2" }, previous);
    expect(text).toContain("# my task");
    expect(text).toContain("FOO: bar");
    expect(text).toContain("disk_size: 100");
    expect(text).toContain("name: b");
    expect(text).toContain("cpus: 2");
  });

  it("drops emptied fields and an emptied resources section", () => {
    const text = formToYaml({ ...emptyForm(), name: "x" }, "name: x\nresources:\n  cpus: 4\n");
    expect(text).toBe("name: x\n");
  });

  it("reports syntax errors at their line", () => {
    const { errors } = yamlToForm("name: a\nrun: |\n  ok\nresources: [\n");
    expect(errors.length).toBeGreaterThan(0);
    expect(errors[0]?.line).toBeGreaterThanOrEqual(4);
  });

  it("reports field errors with the field and its line", () => {
    const { errors } = yamlToForm("name: a\nnum_nodes: 0\nresources:\n  cloud: ibm\n  use_spot: maybe\n");
    expect(errors).toEqual([
      { field: "num_nodes", line: 2, message: "num_nodes must be a whole number of at least 1, got 0" },
      { field: "cloud", line: 4, message: "unknown cloud 'ibm' (allowed: aws, gcp, azure, local)" },
      { field: "use_spot", line: 5, message: "use_spot must be true or false" },
    ]);
  });

  it("reads and writes autostop in SkyPilot's forms", () => {
    const on = formToYaml({ ...emptyForm(), name: "a", autostop: "60" }, "");
    expect(on).toContain("resources:\n  autostop: 60");
    const down = formToYaml({ ...emptyForm(), name: "a", autostop: "2h", autostop_down: true }, "");
    expect(down).toContain("autostop:\n    idle_minutes: 2h\n    down: true");
    expect(yamlToForm(down).form).toMatchObject({ autostop: "2h", autostop_down: true });
    expect(yamlToForm("resources:\n  autostop: false\n").form.autostop).toBe("false");
    expect(yamlToForm("resources:\n  autostop: {down: true}\n").form).toMatchObject({ autostop: "5", autostop_down: true });
    // A mapping keeps the keys the form does not show.
    const kept = formToYaml({ ...emptyForm(), autostop: "15" }, "resources:\n  autostop:\n    idle_minutes: 10\n    wait_for: jobs\n    down: true\n");
    expect(kept).toContain("idle_minutes: 15");
    expect(kept).toContain("wait_for: jobs");
    expect(kept).not.toContain("down");
    expect(formToYaml({ ...emptyForm(), name: "x" }, "name: x\nresources:\n  autostop: 60\n")).toBe("name: x\n");
    const { errors } = yamlToForm("resources:\n  autostop: soon\n");
    expect(errors).toEqual([{ field: "autostop", line: 2, message: "autostop must be minutes (60), a duration (30m, 2h, 1d) or false, got soon" }]);
  });

  it("refuses a document that is not a mapping", () => {
    expect(yamlToForm("- a\n- b\n").errors[0]?.message).toMatch(/mapping/);
  });
});
