// Pages whose backend this build does not have yet. Each says what it will show and what it
// needs, and shows no invented data.
import { unavailable } from "../dom";

export const launchPage = () =>
  unavailable(
    "Launch",
    "Optimizing → provisioning (each failover attempt and why) → setup → running, cancellable.",
    "This build cannot launch from the desktop app yet.",
  );
