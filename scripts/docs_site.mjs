// Writes the pages TypeDoc adds to the API reference (`npm run docs`) into
// docs/.site/ (git-ignored), from files kept elsewhere:
// - README.md as the home page, its absolute links to the guides turned into
//   links to the guides' pages;
// - the guides (docs/*.md, CONTRIBUTING.md, and sections of
//   docs/python_guide.md shown on their own) with the front matter TypeDoc
//   reads (title, group, order);
// - one page per program in examples/ with its whole source, grouped by
//   topic, listing the symbols it imports as links to their pages, and
//   examples.json, from which scripts/typedoc_plugin.mjs links each symbol's
//   page to the examples that use it.
// Nothing here is hand-edited: rerun this script (typedoc does not). With
// `--build` it then runs TypeDoc (typedoc.json), which treats warnings, a
// broken `{@link}` among them, as errors: `npm run docs`, and the `docs` step
// of `npm test`.
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "docs", ".site");
export const REPO = "https://github.com/mpjs/multiprocessing";
const BLOB = `${REPO}/blob/main/`;

/** The guides, in sidebar order: page file, title, where the text comes from. */
const guides = [
  { page: "getting_started.md", title: "Getting started", from: "docs/getting_started.md" },
  { page: "python_guide.md", title: "From Python", from: "docs/python_guide.md" },
  {
    page: "shipping_functions.md",
    title: "Shipping functions to threads",
    from: "docs/python_guide.md",
    section: "Shipping functions to threads",
  },
  {
    page: "crossing_threads.md",
    title: "What crosses threads",
    from: "docs/python_guide.md",
    section: "What crosses threads",
  },
  {
    page: "threads_that_die.md",
    title: "Threads that die",
    from: "docs/python_guide.md",
    section: "Threads that die",
    more: "How this is tested, and what the stress and soak runs found: [Reliability when threads are killed]" +
      "(reliability.md).",
    children: { "Reliability when threads are killed": "../more/reliability.md" },
  },
  { page: "reliability.md", title: "Reliability when threads are killed", from: "docs/reliability.md", child: true },
  { page: "benchmarks.md", title: "Performance", from: "docs/benchmarks.md" },
  { page: "cluster.md", title: "Beyond one machine", from: "docs/cluster.md" },
  { page: "design.md", title: "Architecture", from: "docs/design.md" },
  { page: "contributing.md", title: "Contributing", from: "CONTRIBUTING.md" },
];

/** Where a guide's page is written, under docs/.site/: numbered, as TypeDoc lists documents in file-name order. */
const pathOf = (g) => g.child ? `more/${g.page}` : `guides/${String(guides.indexOf(g) + 1).padStart(2, "0")}_${g.page}`;

/** Example groups, in sidebar order; a program's group comes from its name. */
const exampleGroups = [
  ["Tour", (n) => n === "demo"],
  ["Managers", (n) => n.startsWith("manager_") || n === "process_shared_dict"],
  ["Processes", (n) => n.startsWith("process_") || n.startsWith("thread_")],
  ["Queues", (n) => n.startsWith("queue_")],
  ["Pipes", (n) => n.startsWith("pipe_") || n.startsWith("connection_")],
  ["Pools", (n) => n.startsWith("pool_") || n.startsWith("executor_")],
  ["Locks and shared values", (n) => n.startsWith("lock_") || n.startsWith("shared_")],
  ["Cluster", (n) => n.startsWith("cluster_")],
];

const read = (p) => readFileSync(join(root, p), "utf8");
const frontMatter = (fields) =>
  "---\n" +
  Object.entries(fields)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) =>
      typeof v === "object"
        ? `${k}:\n${Object.entries(v).map(([a, b]) => `  ${JSON.stringify(a)}: ${JSON.stringify(b)}`).join("\n")}`
        : `${k}: ${JSON.stringify(v)}`
    )
    .join("\n") +
  "\n---\n\n";

/** The text of `## heading` up to the next heading of the same or a higher level. */
function section(markdown, heading) {
  const lines = markdown.split("\n");
  const start = lines.findIndex((l) => l === `## ${heading}`);
  if (start < 0) throw new Error(`docs_site: no section "## ${heading}"`);
  let end = lines.findIndex((l, i) => i > start && /^#{1,2} /.test(l));
  if (end < 0) end = lines.length;
  return lines.slice(start + 1, end).join("\n").trim() + "\n";
}

/** Links to files of the repository become links to GitHub, links to guides links to their pages. */
function relink(markdown, fromDir, atRoot) {
  const byFile = new Map(guides.filter((g) => !g.section).map((g) => [g.from, pathOf(g)]));
  return markdown.replace(/\]\(([^)\s]+)\)/g, (whole, target) => {
    let [path, anchor] = target.split("#");
    if (path.startsWith(BLOB)) path = path.slice(BLOB.length);
    else if (/^[a-z]+:|^$/.test(path)) return whole; // another site, or an anchor on this page
    else path = join(fromDir, path).replaceAll("\\", "/");
    const page = byFile.get(path);
    if (page) return `](${atRoot ? "" : "../"}${page}${anchor ? "#" + anchor : ""})`;
    if (path.startsWith("examples/") && path.endsWith(".ts")) {
      return `](${atRoot ? "" : "../"}examples/${path.slice(9, -3)}.md)`;
    }
    return `](${BLOB}${path}${anchor ? "#" + anchor : ""})`;
  });
}

rmSync(out, { recursive: true, force: true });
mkdirSync(join(out, "guides"), { recursive: true });
mkdirSync(join(out, "more"), { recursive: true });
mkdirSync(join(out, "examples"), { recursive: true });

// TypeDoc titles the page with the project's name already.
writeFileSync(join(out, "README.md"), relink(read("README.md").replace(/^# .*\n+/, ""), ".", true));

for (const g of guides) {
  const source = read(g.from);
  const fromDir = dirname(g.from);
  let body = g.section ? section(source, g.section) : source.replace(/^# .*\n+/, "");
  if (g.section) {
    body = `_This page is the section "${g.section}" of [From Python](${BLOB}${g.from})._\n\n${body}`;
  }
  if (g.more) body += `\n${g.more}\n`;
  const fields = { title: g.title, group: g.child ? undefined : "Guides", children: g.children };
  writeFileSync(
    join(out, pathOf(g)),
    frontMatter(fields) + `# ${g.title}\n\n` + relink(body, fromDir, false),
  );
}

const usedBy = {}; // example page -> the symbols it imports, for the plugin's links from the symbols' pages
const names = readdirSync(join(root, "examples")).filter((f) => f.endsWith(".ts")).map((f) => f.slice(0, -3)).sort();
for (const name of names) {
  const source = read(`examples/${name}.ts`);
  const group = exampleGroups.find(([, test]) => test(name))?.[0];
  if (!group) throw new Error(`docs_site: examples/${name}.ts belongs to no group: add it to exampleGroups`);
  // What the program imports from the library, for links to the reference.
  const used = new Set();
  for (const m of source.matchAll(/import\s*(?:type\s*)?\{([^}]*)\}\s*from\s*"\.\.\/(?:mod|cluster)\.ts"/g)) {
    for (const part of m[1].split(",")) {
      const n = part.trim().replace(/^type\s+/, "").split(/\s+as\s+/)[0];
      if (n) used.add(n);
    }
  }
  const namespace = /import \* as (\w+) from "\.\.\/mod\.ts"/.exec(source);
  if (namespace) {
    for (const m of source.matchAll(new RegExp(`\\b${namespace[1]}\\.([A-Za-z]\\w*)`, "g"))) used.add(m[1]);
  }
  // The lead: the first paragraph of the opening comment.
  const opening = /^(?:\/\/[^\n]*\n)?((?:\/\*\*[\s\S]*?\*\/)|(?:(?:\/\/[^\n]*\n)+))/.exec(source)?.[1] ?? "";
  const lead = opening
    .replace(/^\/\*\*|\*\/$/g, "")
    .split("\n")
    .map((l) => l.replace(/^\s*(\* ?|\/\/ ?)/, ""))
    .join("\n")
    .trim()
    .split(/\n\s*\n/)[0]
    .replace(/\s*\n\s*/g, " ");
  // Shown as a user would write it: the package's name in place of the repository's paths.
  const shown = source
    .replaceAll('from "../mod.ts"', 'from "@mpjs/multiprocessing"')
    .replaceAll('from "../cluster.ts"', 'from "@mpjs/multiprocessing/cluster"');
  usedBy[name] = [...used].sort();
  const links = [...used].sort().map((n) => `{@link ${n}}`).join(", ");
  const page = frontMatter({ title: name, group: "Examples", category: group }) +
    `# ${name}\n\n${lead}\n\n` +
    "Run it from a clone of the repository with `deno run -A examples/" + name + ".ts` (or `bun`, or `node` 23.6+). " +
    `Source: [examples/${name}.ts](${BLOB}examples/${name}.ts)` +
    (links ? `; it uses ${links}.` : ".") +
    "\n\n```ts\n" + shown.replace(/\n$/, "") + "\n```\n";
  writeFileSync(join(out, "examples", `${name}.md`), page);
}
writeFileSync(join(out, "examples.json"), JSON.stringify(usedBy, null, 2) + "\n");
console.log(`docs_site: ${guides.length} guides and ${names.length} examples in docs/.site/`);
if (process.argv.includes("--build")) {
  try {
    execFileSync(process.execPath, [join(root, "node_modules", "typedoc", "bin", "typedoc")], {
      cwd: root,
      stdio: "inherit",
    });
  } catch {
    console.error("docs_site: typedoc failed");
    process.exit(1);
  }
}
