// What the pages share while the app is open (the task being written). Not persisted.
export const session = {
  taskYaml: "name: hello\nrun: |\n  echo hello from sky\n",
};
