// `npm run soak -- [--runtimes deno,bun,node] [soak.ts options]`: the soak
// runner (stress/soak.ts) on each runtime in turn, Node against the package
// built by scripts/build_npm.mjs. Every other option (`--case`, `--n`,
// `--samples`, `--keep-handles`, …) goes to stress/soak.ts as it is (see
// there). Exits non-zero when any runtime failed.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const RUNTIMES = ["deno", "bun", "node"];

const argv = process.argv.slice(2);
let runtimes = RUNTIMES;
const rest = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--runtimes" || argv[i] === "--runtime") {
    runtimes = (argv[++i] ?? "").split(",").filter(Boolean);
    const unknown = runtimes.filter((r) => !RUNTIMES.includes(r));
    if (unknown.length || runtimes.length === 0) {
      console.error(`soak: --runtimes takes a list of ${RUNTIMES.join(", ")}`);
      process.exit(2);
    }
  } else rest.push(argv[i]);
}

const env = { ...process.env, NO_COLOR: "1" };
const outcome = [];
for (const runtime of runtimes) {
  console.log(`\n=== soak on ${runtime}`);
  let cmd, args;
  if (runtime === "deno") [cmd, args] = [bin("deno"), ["run", "-A", "--no-check", "stress/soak.ts", ...rest]];
  else if (runtime === "bun") [cmd, args] = [bin("bun"), ["stress/soak.ts", ...rest]];
  else {
    const built = spawnSync(process.execPath, [join(root, "scripts", "build_npm.mjs")], {
      cwd: root,
      stdio: "inherit",
    });
    if (built.status !== 0) {
      outcome.push([runtime, "build failed"]);
      continue;
    }
    [cmd, args] = [process.execPath, ["npm/stress/soak.js", ...rest]];
  }
  const r = spawnSync(cmd, args, { cwd: root, env, stdio: "inherit" });
  outcome.push([runtime, r.status === 0 ? "ok" : r.error ? r.error.message : `failed (exit ${r.status ?? r.signal})`]);
}
console.log("\n=== soak summary");
for (const [runtime, what] of outcome) console.log(`${runtime.padEnd(5)} ${what}`);
process.exit(outcome.every(([, what]) => what === "ok") ? 0 : 1);
