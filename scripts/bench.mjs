// `npm run bench -- <name> [--json] [--runtimes deno,node,bun]`: runs
// bench/<name>.ts on each runtime (Node runs the compiled copy in npm/bench)
// and bench/<name>.py with python3 when present, all in this one run, then
// prints a table of medians with each peer's ratio to ours.
//
// A bench script prints one line per measurement:
//   BENCH {"case":"...","impl":"mpjs","median":1.2,"unit":"µs","better":"lower"}
// `ratio` is how many times better ours ("mpjs") is than the row, on the same
// runtime (Python rows are compared with ours on Node): > 1 means we win.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { delimiter, dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const json = args.includes("--json");
const rtIdx = args.indexOf("--runtimes");
const runtimes = rtIdx >= 0 ? args[rtIdx + 1].split(",") : ["deno", "bun", "node"];
const names = args.filter((a, i) => !a.startsWith("--") && args[i - 1] !== "--runtimes");
const available = readdirSync(join(root, "bench")).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3));
if (names.length === 0) {
  console.error(
    `usage: npm run bench -- <name> [--json] [--runtimes deno,bun,node]\nbenchmarks: ${available.join(", ")}`,
  );
  process.exit(2);
}
for (const n of names) {
  if (!available.includes(n)) {
    console.error(`no benchmark named '${n}': choose one of ${available.join(", ")}`);
    process.exit(2);
  }
}

const bin = (name) => join(root, "node_modules", ".bin", name);
if (runtimes.includes("node")) {
  const b = spawnSync(process.execPath, [join(root, "scripts", "build_npm.mjs")], { cwd: root, stdio: "inherit" });
  if (b.status !== 0) process.exit(1);
}

function collect(runtime, cmd, argv) {
  if (!json) console.error(`running ${runtime}: ${[cmd, ...argv].join(" ").replaceAll(root + "/", "")}`);
  const r = spawnSync(cmd, argv, { cwd: root, encoding: "utf8", timeout: 15 * 60_000, maxBuffer: 64 << 20 });
  if (r.status !== 0) {
    console.error(`${runtime} failed (${r.status ?? r.error?.message}):\n${(r.stderr ?? "").slice(-2000)}`);
  }
  const rows = [];
  for (const line of (r.stdout ?? "").split("\n")) {
    if (!line.startsWith("BENCH ")) continue;
    try {
      rows.push({ runtime, ...JSON.parse(line.slice(6)) });
    } catch {
      console.error(`bad BENCH line from ${runtime}: ${line}`);
    }
  }
  return rows;
}

// The cluster benchmark needs a nats-server (it starts its own): without
// one it is skipped with a line, Python's peer included.
function hasNatsServer() {
  if (process.env.NATS_SERVER !== undefined) return existsSync(process.env.NATS_SERVER);
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"]);
  return dirs.some((dir) => dir && existsSync(join(dir, "nats-server")));
}

const all = [];
for (const name of names) {
  if (name === "cluster" && !hasNatsServer()) {
    console.log("cluster benchmark skipped: nats-server not found; install it with `apt-get install -y nats-server`");
    continue;
  }
  const rows = [];
  for (const rt of runtimes) {
    if (rt === "deno") rows.push(...collect("deno", bin("deno"), ["run", "-A", `bench/${name}.ts`]));
    if (rt === "bun") rows.push(...collect("bun", bin("bun"), [`bench/${name}.ts`]));
    if (rt === "node") rows.push(...collect("node", process.execPath, [`npm/bench/${name}.js`]));
  }
  if (existsSync(join(root, "bench", `${name}.py`))) {
    rows.push(...collect("python", "python3", [`bench/${name}.py`]));
  }
  for (const row of rows) {
    const ours = rows.find((o) =>
      o.impl === "mpjs" && o.case === row.case &&
      o.runtime === (row.runtime === "python" ? (runtimes.includes("node") ? "node" : runtimes[0]) : row.runtime)
    );
    row.ratio = ours && row.median > 0 && ours.median > 0
      ? (row.better === "higher" ? ours.median / row.median : row.median / ours.median)
      : null;
    row.bench = name;
  }
  all.push(...rows);
}

if (json) {
  console.log(JSON.stringify(
    all.map(({ bench, case: c, impl, runtime, median, unit, better, ratio }) => ({
      bench,
      case: c,
      implementation: impl,
      runtime,
      median,
      unit,
      better,
      ratio_ours_vs_this: ratio,
    })),
    null,
    2,
  ));
} else {
  const fmt = (n) => (n >= 1000 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toPrecision(3));
  const header = ["bench", "case", "impl", "runtime", "median", "unit", "ours is"];
  const lines = all.map((r) => [
    r.bench,
    r.case,
    r.impl,
    r.runtime,
    fmt(r.median),
    r.unit + (r.better === "higher" ? " ↑" : " ↓"),
    r.impl === "mpjs" ? "—" : r.ratio == null ? "n/a" : `${r.ratio.toFixed(2)}×`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...lines.map((l) => String(l[i]).length)));
  const show = (l) => l.map((c, i) => String(c).padEnd(widths[i])).join("  ");
  console.log(show(header));
  console.log(widths.map((w) => "-".repeat(w)).join("  "));
  for (const l of lines) console.log(show(l));
  console.log(
    "\n'ours is' = how many times better @mpjs/multiprocessing is than that row (same runtime; Python vs ours on Node).",
  );
}
