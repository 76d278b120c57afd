// Copyright the @mpjs/multiprocessing authors. MIT license.
/**
 * The chaos runner on the runtime that runs this file (`scripts/stress.mjs`
 * runs it on each runtime):
 *
 * ```sh
 * deno run -A stress/run.ts [--seed N] [--minutes M | --rounds N] [--seconds S] [--scenario a,b] [--json]
 * ```
 *
 * Rounds cycle through the scenarios (`scenarios.ts`); round `k` uses seed
 * `N + k`, so a failing round is replayed with its own seed and
 * `--rounds 1`. Without `--minutes` or `--rounds`, each scenario runs once.
 * Prints a line per round, the totals per scenario, and, for a failure,
 * the seed that reproduces it; exits with 1 when any round failed.
 *
 * @module
 */

import process from "node:process";
import { type RoundResult, runRound, type Scenario, SCENARIOS } from "./scenarios.ts";

interface Args {
  seed: number;
  minutes?: number;
  rounds?: number;
  seconds: number;
  scenarios: Scenario[];
  json: boolean;
}

function usage(problem: string): never {
  console.error(`stress: ${problem}`);
  console.error(
    "usage: run.ts [--seed N] [--minutes M | --rounds N] [--seconds S] [--scenario " + SCENARIOS.join(",") +
      "] [--json]",
  );
  process.exit(2);
}

function parse(argv: string[]): Args {
  const args: Args = { seed: Math.floor(Math.random() * 1e9), seconds: 10, scenarios: [...SCENARIOS], json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const value = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isFinite(v) || v < 0) usage(`${a} needs a number`);
      return v;
    };
    if (a === "--seed") args.seed = Math.floor(value()) >>> 0;
    else if (a === "--minutes") args.minutes = value();
    else if (a === "--rounds") args.rounds = Math.floor(value());
    else if (a === "--seconds") args.seconds = value();
    else if (a === "--json") args.json = true;
    else if (a === "--scenario" || a === "--scenarios") {
      const names = (argv[++i] ?? "").split(",").filter(Boolean);
      for (const n of names) if (!SCENARIOS.includes(n as Scenario)) usage(`unknown scenario '${n}'`);
      if (names.length === 0) usage(`${a} needs a scenario name`);
      args.scenarios = names as Scenario[];
    } else usage(`unknown argument '${a}'`);
  }
  return args;
}

function line(r: RoundResult): string {
  return `${r.runtime} ${r.scenario.padEnd(9)} seed ${String(r.seed).padEnd(10)} ${
    r.seconds.toFixed(1).padStart(5)
  } s: killed ${r.killed}, ops ${r.ops}, lost ${r.lost}, duplicated ${r.duplicated}, phantoms ${r.phantoms}, mutex violations ${r.mutex}, wedges ${r.wedges}, stranded ${r.stranded}, recovered ${r.recovered}${
    r.failures.length ? " FAILED" : ""
  }`;
}

const args = parse(process.argv.slice(2));
const results: RoundResult[] = [];
const startedAt = Date.now();
const budget = args.minutes === undefined ? undefined : args.minutes * 60_000;
const rounds = args.rounds ?? (budget === undefined ? args.scenarios.length : Infinity);
console.log(
  `stress: seed ${args.seed}, scenarios ${args.scenarios.join(",")}, ${args.seconds} s per round, ${
    budget === undefined ? `${rounds} rounds` : `${args.minutes} minutes`
  }`,
);
for (let k = 0; k < rounds; k++) {
  if (budget !== undefined && Date.now() - startedAt >= budget) break;
  const scenario = args.scenarios[k % args.scenarios.length];
  const seed = (args.seed + k) >>> 0;
  const r = await runRound(scenario, seed, args.seconds);
  results.push(r);
  console.log(line(r));
  for (const f of r.failures) console.log(`  FAIL ${r.runtime} ${r.scenario} seed ${seed}: ${f}`);
  if (r.failures.length) {
    console.log(
      `  reproduce: npm run stress -- --runtimes ${r.runtime} --scenario ${r.scenario} --seed ${seed} --rounds 1 --seconds ${args.seconds}`,
    );
  }
}

console.log("\ntotals per scenario:");
for (const s of args.scenarios) {
  const rs = results.filter((r) => r.scenario === s);
  if (rs.length === 0) continue;
  const sum = (k: keyof RoundResult) => rs.reduce((a, r) => a + (r[k] as number), 0);
  console.log(
    `  ${s.padEnd(9)} rounds ${rs.length}, ${sum("seconds").toFixed(0)} s: killed ${sum("killed")}, ops ${
      sum("ops")
    }, lost ${sum("lost")}, duplicated ${sum("duplicated")}, phantoms ${sum("phantoms")}, mutex violations ${
      sum("mutex")
    }, wedges ${sum("wedges")}, stranded ${sum("stranded")}, recovered ${sum("recovered")}, failed rounds ${
      rs.filter((r) => r.failures.length).length
    }`,
  );
}
const failed = results.filter((r) => r.failures.length);
if (failed.length) {
  const first = failed[0];
  console.log(
    `stress: FAILED ${failed.length} of ${results.length} rounds; first: ${first.runtime} ${first.scenario} seed ${first.seed}: ${
      first.failures[0]
    }`,
  );
} else {
  console.log(`stress: ok, ${results.length} rounds, seed ${args.seed}`);
}
if (args.json) console.log(`STRESS_JSON ${JSON.stringify(results)}`);
process.exit(failed.length ? 1 : 0);
