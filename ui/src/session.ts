// What the pages share while the app is open (the task being written, the candidate picked on
// the comparison page, a launch asked for). Not persisted.
import type { Pick } from "./backend";
import { DEFAULT_AUTOSTOP_MINUTES } from "./taskform";

export const session: {
  taskYaml: string;
  pick: Pick | null;
  launchRequested: boolean;
  /// A job to follow when the Jobs page opens (set by exec on the Clusters page).
  follow: { cluster: string; job: number | null } | null;
} = {
  taskYaml: `name: hello\nresources:\n  autostop: ${DEFAULT_AUTOSTOP_MINUTES}\nrun: |\n  echo hello from sky\n`,
  pick: null,
  launchRequested: false,
  follow: null,
};
