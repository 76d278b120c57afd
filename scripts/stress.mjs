// `npm run stress -- [--seed N] [--minutes M] [--runtimes deno,bun,node] [run.ts options]`:
// the chaos runner (stress/run.ts) on each runtime in turn, Node against the
// package built by scripts/build_npm.mjs. `--minutes` is per runtime; every
// other option goes to stress/run.ts as it is (see there). Exits non-zero
// when any runtime failed.
import { parseRuntimes, runPerRuntime } from "./_per_runtime.mjs";

const { runtimes, rest } = parseRuntimes("stress");
// One seed for every runtime, so their rounds make the same choices.
if (!rest.includes("--seed")) rest.push("--seed", String(Math.floor(Math.random() * 1e9)));
runPerRuntime("stress", "stress/run.ts", runtimes, rest);
