// Runs one of this repository's TypeScript programs (a runner under stress/)
// on Deno, Bun and Node in turn, Node against the package built by
// scripts/build_npm.mjs, and exits non-zero when any runtime failed. Shared
// by scripts/soak.mjs and scripts/stress.mjs.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
export const RUNTIMES = ["deno", "bun", "node"];

/**
 * Splits `--runtimes a,b` (or `--runtime a`) off the command line: the
 * runtimes to use and every other argument, in order. Exits with 2 on an
 * unknown runtime.
 */
export function parseRuntimes(name, argv = process.argv.slice(2)) {
  let runtimes = RUNTIMES;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runtimes" || argv[i] === "--runtime") {
      runtimes = (argv[++i] ?? "").split(",").filter(Boolean);
      const unknown = runtimes.filter((r) => !RUNTIMES.includes(r));
      if (unknown.length || runtimes.length === 0) {
        console.error(`${name}: --runtimes takes a list of ${RUNTIMES.join(", ")}`);
        process.exit(2);
      }
    } else rest.push(argv[i]);
  }
  return { runtimes, rest };
}

/**
 * Runs `script` (a path such as `stress/run.ts`) with `args` on each of
 * `runtimes`, prints a summary headed `name`, and exits: 0 when every
 * runtime passed.
 */
export function runPerRuntime(name, script, runtimes, args, denoFlags = []) {
  const env = { ...process.env, NO_COLOR: "1" };
  const outcome = [];
  for (const runtime of runtimes) {
    console.log(`\n=== ${name} on ${runtime}`);
    let cmd, cmdArgs;
    if (runtime === "deno") [cmd, cmdArgs] = [bin("deno"), ["run", "-A", ...denoFlags, script, ...args]];
    else if (runtime === "bun") [cmd, cmdArgs] = [bin("bun"), [script, ...args]];
    else {
      const built = spawnSync(process.execPath, [join(root, "scripts", "build_npm.mjs")], {
        cwd: root,
        stdio: "inherit",
      });
      if (built.status !== 0) {
        outcome.push([runtime, "build failed"]);
        continue;
      }
      [cmd, cmdArgs] = [process.execPath, [join("npm", script.replace(/\.ts$/, ".js")), ...args]];
    }
    const r = spawnSync(cmd, cmdArgs, { cwd: root, env, stdio: "inherit" });
    outcome.push([
      runtime,
      r.status === 0 ? "ok" : r.error ? r.error.message : `failed (exit ${r.status ?? r.signal})`,
    ]);
  }
  console.log(`\n=== ${name} summary`);
  for (const [runtime, what] of outcome) console.log(`${runtime.padEnd(5)} ${what}`);
  process.exit(outcome.every(([, what]) => what === "ok") ? 0 : 1);
}
