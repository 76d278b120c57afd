// A TypeDoc plugin for this project's reference (typedoc.json loads it):
// - names each module by its import specifier from deno.json's exports
//   (`@mpjs/multiprocessing/queue`, not `queue`);
// - shows the error class of `@throws {EmptyError} when …` as a link. The
//   source keeps the JSDoc form, which deno doc and JSR render with the type;
//   TypeDoc keeps the annotation only because typedoc.json lists `@throws` in
//   `preservedTypeAnnotationTags`, and shows it as plain text;
// - resolves `{@link Name}` and `{@link Name.member}` to the one exported
//   symbol of that name when TypeScript cannot (a guide, an example page, or a
//   comment in a file that does not import the symbol);
// - adds to each symbol used by a program in examples/ a "See" list of
//   those programs' pages (docs/.site/examples.json, from
//   scripts/docs_site.mjs);
// - drops a type alias that only repeats a value of the same name in the same
//   module (`type Process = Thread` beside `const Process = Thread`), so the
//   sidebar lists such a name once.
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CommentTag, Converter, DeclarationReflection, DocumentReflection, ReflectionKind } from "typedoc";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const deno = JSON.parse(readFileSync(join(root, "deno.json"), "utf8"));
const specifierOf = new Map(
  Object.entries(deno.exports).map(([key, file]) => [resolve(root, file), deno.name + key.slice(1)]),
);
const MDN = "https://developer.mozilla.org/en-US/docs/Web/JavaScript/Reference/Global_Objects/";
const builtinErrors = new Set(["Error", "TypeError", "RangeError", "SyntaxError", "ReferenceError", "DOMException"]);

/** @param {import("typedoc").Application} app */
export function load(app) {
  app.converter.on(Converter.EVENT_CREATE_DECLARATION, (context, reflection) => {
    if (!reflection.kindOf(ReflectionKind.Module)) return;
    const symbol = context.getSymbolFromReflection(reflection);
    const file = symbol?.valueDeclaration?.getSourceFile?.().fileName ?? symbol?.declarations?.[0]?.getSourceFile?.()
      .fileName;
    const specifier = file && specifierOf.get(resolve(file));
    if (specifier) reflection.name = specifier;
  });

  // Before links are resolved (the resolver runs at EVENT_RESOLVE_END).
  app.converter.on(Converter.EVENT_RESOLVE_BEGIN, (context) => {
    const project = context.project;
    const all = Object.values(project.reflections);

    for (const module of project.children ?? []) {
      const values = new Set(
        (module.children ?? []).filter((c) => c.kindOf(ReflectionKind.Variable | ReflectionKind.Class)).map((c) =>
          c.name
        ),
      );
      for (const child of [...(module.children ?? [])]) {
        if (child.kindOf(ReflectionKind.TypeAlias) && values.has(child.name)) project.removeReflection(child);
      }
    }

    const exported = new Map();
    for (const r of Object.values(project.reflections)) {
      if (!(r instanceof DeclarationReflection) || r.kindOf(ReflectionKind.Reference)) continue;
      if (!r.parent?.kindOf(ReflectionKind.Module | ReflectionKind.Project)) continue;
      exported.set(r.name, exported.has(r.name) ? null : r); // null: ambiguous
    }
    const lookup = (text) => {
      const [head, ...rest] = text.trim().replace(/\(\)$/, "").split(".");
      let target = exported.get(head);
      for (const name of rest) target = target?.children?.find((c) => c.name === name);
      return target ?? undefined;
    };
    const fixParts = (parts) => {
      for (const part of parts ?? []) {
        if (part.kind !== "inline-tag" || !part.tag.startsWith("@link") || part.target !== undefined) continue;
        if (!/^\s*[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$#]*)*(\(\))?\s*$/.test(part.text)) continue;
        const target = lookup(part.text);
        if (target) part.target = target;
      }
    };
    const fixComment = (comment) => {
      if (!comment) return;
      for (const tag of comment.blockTags) {
        if (tag.tag === "@throws" && tag.typeAnnotation) {
          const name = tag.typeAnnotation.replace(/^\{|\}$/g, "").trim();
          const target = builtinErrors.has(name) ? MDN + name : lookup(name);
          tag.content.unshift(
            target
              ? { kind: "inline-tag", tag: "@linkcode", text: name, target }
              : { kind: "code", text: `\`${name}\`` },
            { kind: "text", text: " " },
          );
          delete tag.typeAnnotation;
        }
      }
      fixParts(comment.summary);
      for (const tag of comment.blockTags) fixParts(tag.content);
    };
    for (const r of all) {
      fixComment(r.comment);
      if (r.content) fixParts(r.content); // documents
      for (const sig of r.signatures ?? []) fixComment(sig.comment);
      if (r.getSignature) fixComment(r.getSignature.comment);
      if (r.setSignature) fixComment(r.setSignature.comment);
    }
    fixParts(project.readme);

    const examplesFile = join(root, "docs", ".site", "examples.json");
    if (existsSync(examplesFile)) {
      const pages = new Map(
        all.filter((r) => r instanceof DocumentReflection && r.frontmatter.group === "Examples").map((
          r,
        ) => [r.name, r]),
      );
      const examplesOf = new Map();
      for (const [page, symbols] of Object.entries(JSON.parse(readFileSync(examplesFile, "utf8")))) {
        for (const name of symbols) {
          const target = exported.get(name);
          if (target && pages.has(page)) examplesOf.set(target, [...(examplesOf.get(target) ?? []), pages.get(page)]);
        }
      }
      for (const [target, docs] of examplesOf) {
        if (docs.length > 12) continue; // isMainThread and the like: every program uses them
        const parts = [{ kind: "text", text: "Examples: " }];
        docs.forEach((doc, i) => {
          if (i > 0) parts.push({ kind: "text", text: ", " });
          parts.push({ kind: "inline-tag", tag: "@link", text: doc.name, target: doc });
        });
        const comment = target.comment ?? target.signatures?.[0]?.comment;
        comment?.blockTags.push(new CommentTag("@see", parts));
      }
    }
  }, 100);
}
