// `npm run test:docs`: builds the documentation site (`npm run docs`), serves
// docs/api/ on loopback and opens every page in headless Chromium, following
// every internal link from the home page. Fails on a console error or an
// uncaught exception on any page, a link to a page that does not exist, an
// anchor that is not on its page, a search (for `getSync`, and for words of
// the guides) that finds nothing, or an example page without its source.
// Saves screenshots of a few pages into docs/screenshots/ (git-ignored). Not part of `npm test`: it
// needs Chromium (Debian: `apt-get install chromium`; another binary with
// CHROMIUM=/path/to/chrome). `--no-build` checks the site already built.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { dirname, extname, join, normalize } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const site = join(root, "docs", "api");
const shots = join(root, "docs", "screenshots");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(
    `docs test: no Chromium at ${executablePath}: install Debian's chromium (apt-get install chromium) or set CHROMIUM`,
  );
  process.exit(1);
}

if (!process.argv.includes("--no-build")) {
  execFileSync(process.execPath, [join(root, "scripts", "docs_site.mjs"), "--build"], { stdio: "inherit", cwd: root });
}

const types = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript",
  ".css": "text/css",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".json": "application/json",
};
const server = createServer((req, res) => {
  let path = decodeURIComponent(new URL(req.url ?? "/", "http://localhost").pathname);
  if (path.endsWith("/")) path += "index.html";
  const file = join(site, normalize(path));
  if (!file.startsWith(site) || !existsSync(file) || !statSync(file).isFile()) {
    res.writeHead(404, { "Content-Type": "text/plain" });
    return res.end("not found");
  }
  res.writeHead(200, { "Content-Type": types[extname(file)] ?? "application/octet-stream" });
  res.end(readFileSync(file));
});
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const origin = `http://127.0.0.1:${server.address().port}`;

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
const problems = [];
const pages = new Map(); // path -> ids on the page
const links = []; // { from, path, anchor }
let checks = 0;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  // Fonts, images and scripts from other sites are not part of the check, and the machine may be offline.
  await context.route((url) => !url.href.startsWith(origin), (route) => route.abort());
  const tab = await context.newPage();
  let current = "";
  tab.on("console", (m) => {
    if (m.type() === "error") problems.push(`${current}: console error: ${m.text()}`);
  });
  tab.on("pageerror", (e) => problems.push(`${current}: uncaught ${e.message}`));

  // Crawl with a few tabs at once: most of a page's time is spent waiting.
  const queue = ["/index.html"];
  const seen = new Set(queue);
  let active = 0;
  const crawl = async () => {
    const tab = await context.newPage();
    let current = "";
    tab.on("console", (m) => {
      if (m.type() === "error") problems.push(`${current}: console error: ${m.text()}`);
    });
    tab.on("pageerror", (e) => problems.push(`${current}: uncaught ${e.message}`));
    for (;;) {
      const path = queue.shift();
      if (path === undefined) {
        if (active === 0) break;
        await new Promise((r) => setTimeout(r, 20));
        continue;
      }
      active++;
      try {
        current = path;
        const response = await tab.goto(origin + path, { waitUntil: "load" }).catch((e) => {
          problems.push(`${path}: ${e.message.split("\n")[0]}`);
          return null;
        });
        if (!response || response.status() !== 200) {
          if (response) problems.push(`${path}: HTTP ${response.status()}`);
          pages.set(path, null);
          continue;
        }
        if (!path.endsWith(".html")) continue;
        const found = await tab.evaluate(() => ({
          ids: [...document.querySelectorAll("[id], a[name]")].map((e) => e.id || e.getAttribute("name")),
          hrefs: [...document.querySelectorAll("a[href], link[href], script[src], img[src]")].map((e) =>
            e.href || e.src
          ),
        }));
        pages.set(path, new Set(found.ids));
        for (const href of found.hrefs) {
          if (!href.startsWith(origin)) continue;
          const url = new URL(href);
          const target = url.pathname.endsWith("/") ? url.pathname + "index.html" : url.pathname;
          links.push({ from: path, path: target, anchor: decodeURIComponent(url.hash.slice(1)) });
          if (!seen.has(target)) {
            seen.add(target);
            queue.push(target);
          }
        }
      } finally {
        active--;
      }
    }
    await tab.close();
  };
  await Promise.all(Array.from({ length: 4 }, crawl));
  for (const { from, path, anchor } of links) {
    checks++;
    const ids = pages.get(path);
    if (ids === null) problems.push(`${from}: broken link to ${path}`);
    else if (anchor && ids && !ids.has(anchor)) problems.push(`${from}: no anchor #${anchor} on ${path}`);
  }
  const htmlPages = [...pages.keys()].filter((p) => p.endsWith(".html"));
  console.log(`docs test: ${htmlPages.length} pages, ${links.length} internal links and anchors checked`);

  // Every example page shows its program.
  const examples = htmlPages.filter((p) => p.startsWith("/documents/") && /^[a-z_]+\.html$/.test(p.slice(11)));
  const programs = readdirSync(join(root, "examples")).filter((f) => f.endsWith(".ts"));
  if (examples.length !== programs.length) {
    problems.push(`${examples.length} example pages reached from the home page for ${programs.length} programs`);
  }
  for (const path of examples) {
    checks++;
    current = path;
    await tab.goto(origin + path);
    const code = await tab.evaluate(() =>
      [...document.querySelectorAll("pre code")].map((e) => e.textContent).join("")
    );
    if (!/import .* from "@mpjs\/multiprocessing|import .* from "node:/.test(code) || code.length < 300) {
      problems.push(`${path}: the program's source is not shown`);
    }
  }

  // The search finds a method by its name, and the guides by their words.
  mkdirSync(shots, { recursive: true });
  for (const [query, expected] of [["benchmark", "Performance"], ["python", "From Python"], ["getSync", "getSync"]]) {
    checks++;
    current = `search for ${query}`;
    await tab.goto(origin + "/index.html");
    await tab.click("#tsd-search-trigger");
    await tab.fill("#tsd-search-input", query);
    const hit = await tab.waitForFunction(
      (expected) =>
        [...document.querySelectorAll("#tsd-search-results li")].find((li) => li.textContent.includes(expected)),
      expected,
      { timeout: 10_000 },
    ).then(() => true, () => false);
    if (!hit) problems.push(`search: "${query}" does not find ${expected}`);
  }
  await tab.screenshot({ path: join(shots, "search.png") });

  for (
    const [name, path] of [
      ["home", "/index.html"],
      ["guide", "/documents/Getting_started.html"],
      ["queue", htmlPages.find((p) => p.endsWith(".Queue.html"))],
      ["example", "/documents/queue_chain.html"],
      ["module", htmlPages.find((p) => p.endsWith("_queue.html") && p.startsWith("/modules/"))],
    ]
  ) {
    if (!path) continue;
    current = path;
    await tab.goto(origin + path);
    await tab.screenshot({ path: join(shots, `${name}.png`), fullPage: name !== "queue" });
  }
} finally {
  await browser.close();
  server.close();
}

for (const p of problems) console.error(`docs test: ${p}`);
console.log(
  `docs test: ${checks - problems.length} passed, ${problems.length} failed; screenshots in docs/screenshots/`,
);
process.exit(problems.length ? 1 : 0);
