// `npm run soak -- [--runtimes deno,bun,node] [soak.ts options]`: the soak
// runner (stress/soak.ts) on each runtime in turn, Node against the package
// built by scripts/build_npm.mjs. Every other option (`--case`, `--n`,
// `--samples`, `--keep-handles`, …) goes to stress/soak.ts as it is (see
// there). Exits non-zero when any runtime failed.
import { parseRuntimes, runPerRuntime } from "./_per_runtime.mjs";

const { runtimes, rest } = parseRuntimes("soak");
runPerRuntime("soak", "stress/soak.ts", runtimes, rest, ["--no-check"]);
