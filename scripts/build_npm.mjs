// Builds the npm package into npm/: ESM + .d.ts compiled by tsc from the same
// sources Deno and Bun run, a package.json whose "exports" mirror deno.json,
// README and LICENSE. tests/, examples/ and bench/ are compiled beside it so
// Node runs them against the built package, but they are not published.
// With `--check` (the `build` step of `npm test`) it then lints the package
// with publint and @arethetypeswrong/cli; the latter with its `esm-only`
// profile, as the package has no CommonJS entry (its module graph uses
// top-level await, so `require()` of it fails; the README says so).
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "npm");
const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const tsc = join(root, "node_modules", "typescript", "bin", "tsc");
try {
  execFileSync(process.execPath, [tsc, "-p", join(root, "tsconfig.build.json")], { stdio: "inherit", cwd: root });
} catch {
  console.error("build_npm: tsc failed");
  process.exit(1);
}

const js = (p) => p.replace(/\.ts$/, ".js");
const exportsMap = {};
for (const [key, file] of Object.entries(deno.exports)) {
  exportsMap[key] = { types: js(file).replace(/\.js$/, ".d.ts"), default: js(file) };
}
const npmPkg = {
  name: deno.name,
  version: deno.version,
  description: pkg.description,
  license: deno.license,
  repository: { type: "git", url: "git+https://github.com/mpjs/multiprocessing.git" },
  homepage: "https://github.com/mpjs/multiprocessing#readme",
  bugs: { url: "https://github.com/mpjs/multiprocessing/issues" },
  type: "module",
  main: "./mod.js",
  types: "./mod.d.ts",
  exports: exportsMap,
  // The worker command of cluster pools (cluster_worker.ts).
  bin: { "mpjs-worker": "./cluster_worker.js" },
  files: ["*.js", "*.d.ts", "README.md", "LICENSE"],
  engines: { node: ">=20" },
  keywords: [
    "multiprocessing",
    "threading",
    "python",
    "worker",
    "web-worker",
    "worker-threads",
    "thread-pool",
    "process-pool",
    "SharedArrayBuffer",
    "Atomics",
    "queue",
    "pipe",
    "pool",
    "lock",
    "semaphore",
    "shared-memory",
    "concurrency",
    "parallel",
    "deno",
    "bun",
  ],
  dependencies: pkg.dependencies,
  sideEffects: true,
};
writeFileSync(join(out, "package.json"), JSON.stringify(npmPkg, null, 2) + "\n");
chmodSync(join(out, "cluster_worker.js"), 0o755);
for (const f of ["README.md", "LICENSE"]) copyFileSync(join(root, f), join(out, f));
console.log(`build_npm: built ${deno.name}@${deno.version} in npm/`);

if (process.argv.includes("--check")) {
  const bin = (name) => join(root, "node_modules", ".bin", name);
  for (
    const [what, cmd, args] of [
      ["publint", bin("publint"), ["run", out, "--strict"]],
      ["attw", bin("attw"), ["--pack", out, "--profile", "esm-only", "--format", "ascii"]],
    ]
  ) {
    try {
      execFileSync(cmd, args, { stdio: "inherit", cwd: root, env: { ...process.env, NO_COLOR: "1" } });
    } catch {
      console.error(`build_npm: ${what} found problems in the package`);
      process.exit(1);
    }
  }
}
