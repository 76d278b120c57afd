// `npm run test:browser`: runs tests/browser/smoke.ts in headless Chromium.
// Builds the npm package, bundles the page script and the library's two
// worker entries with esbuild as a user's bundler would (ES modules, shared
// chunks, no other settings), serves them with the cross-origin isolation
// headers that SharedArrayBuffer needs, and reads the page's results. Not part of
// `npm test`: it needs Chromium (Debian: `apt-get install chromium`; another
// binary with CHROMIUM=/path/to/chrome).
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(
    `browser test: no Chromium at ${executablePath}: install Debian's chromium (apt-get install chromium) or set CHROMIUM`,
  );
  process.exit(1);
}

execFileSync(process.execPath, [join(root, "scripts", "build_npm.mjs")], { stdio: "inherit" });
const out = mkdtempSync(join(tmpdir(), "mpjs-browser-"));
await build({
  entryPoints: {
    smoke: join(root, "npm", "tests", "browser", "smoke.js"),
    // The library starts its workers from these files, found next to its own code.
    _worker: join(root, "npm", "_worker.js"),
    _pool_worker: join(root, "npm", "_pool_worker.js"),
  },
  bundle: true,
  splitting: true,
  format: "esm",
  outdir: out,
  logLevel: "warning",
});

const page = '<!doctype html><meta charset="utf-8"><script type="module" src="/smoke.js"></script>';
const server = createServer((req, res) => {
  const path = new URL(req.url ?? "/", "http://localhost").pathname;
  const headers = {
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Embedder-Policy": "require-corp",
  };
  if (path === "/") {
    res.writeHead(200, { ...headers, "Content-Type": "text/html" });
    return res.end(page);
  }
  const file = join(out, normalize(path));
  if (!file.startsWith(out) || extname(file) !== ".js" || !existsSync(file)) {
    res.writeHead(404);
    return res.end();
  }
  res.writeHead(200, { ...headers, "Content-Type": "text/javascript" });
  res.end(readFileSync(file));
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const url = `http://127.0.0.1:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath,
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
let passed = 0;
let failed = 0;
try {
  const tab = await browser.newPage();
  const errors = [];
  tab.on("pageerror", (e) => errors.push(e.message));
  tab.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await tab.goto(url);
  const isolated = await tab.evaluate(() => globalThis.crossOriginIsolated);
  if (!isolated) throw new Error("the page is not cross-origin isolated: no SharedArrayBuffer");
  try {
    await tab.waitForFunction(() => globalThis.smokeResults !== undefined, null, { timeout: 60_000 });
  } catch {
    throw new Error(`the page gave no results within 60 s${errors.length ? `; errors:\n${errors.join("\n")}` : ""}`);
  }
  for (const r of await tab.evaluate(() => globalThis.smokeResults)) {
    console.log(`${r.ok ? "ok  " : "FAIL"} ${r.name}${r.ok ? "" : `\n     ${r.detail}`}`);
    if (r.ok) passed++;
    else failed++;
  }
} catch (error) {
  console.error(`browser test: ${error.message}`);
  failed++;
} finally {
  await browser.close();
  server.close();
  rmSync(out, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
