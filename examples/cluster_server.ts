// Copyright the @mpjs/multiprocessing authors. MIT license.
// Starts a throw-away `nats-server -js` on a free loopback port with its own
// store directory, for the cluster demo, tests and benchmark.

import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import process from "node:process";

/** What to tell someone who has no nats-server. */
export const INSTALL_HINT = "install it with `apt-get install -y nats-server` (Debian/Ubuntu) or from nats.io";

/**
 * The path of the `nats-server` executable, or `undefined` when there is
 * none: `$NATS_SERVER` if set, else the first on `PATH` (and the sbin
 * directories Debian installs it in).
 */
export function natsServerPath(): string | undefined {
  const chosen = process.env.NATS_SERVER;
  if (chosen !== undefined) return existsSync(chosen) ? chosen : undefined;
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(["/usr/sbin", "/usr/local/sbin", "/usr/local/bin"]);
  for (const dir of dirs) {
    if (dir && existsSync(join(dir, "nats-server"))) return join(dir, "nats-server");
  }
  return undefined;
}

/** A running server. */
export interface NatsServer {
  /** `nats://127.0.0.1:<port>` */
  url: string;
  port: number;
  /** The JetStream store directory (removed by `stop`). */
  storeDir: string;
  /** Stops the server (SIGTERM, then SIGKILL) and, unless `keepStore`, removes its store. */
  stop(keepStore?: boolean): Promise<void>;
  /** Stops the server and starts it again on the same port and store. */
  restart(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: "127.0.0.1", port });
    s.on("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.on("error", () => resolve(false));
  });
}

/**
 * Starts `nats-server -js` on a free loopback port.
 *
 * @param extraArgs More server flags, e.g. `["--auth", "token"]`.
 */
export async function startNatsServer(extraArgs: string[] = []): Promise<NatsServer> {
  const bin = natsServerPath();
  if (!bin) throw new Error(`nats-server not found: ${INSTALL_HINT}`);
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), "mpjs-nats-"));
  let child: ChildProcess;
  let stderr = "";
  const launch = async () => {
    stderr = "";
    child = spawn(bin, ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir, ...extraArgs], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    child.stderr!.setEncoding("utf8").on("data", (s: string) => stderr += s);
    const started = Date.now();
    while (!(await canConnect(port))) {
      if (child.exitCode !== null || Date.now() - started > 20_000) {
        child.kill("SIGKILL");
        throw new Error(`nats-server did not start on port ${port}: ${stderr.slice(-500)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const halt = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
  };
  await launch();
  return {
    url: `nats://127.0.0.1:${port}`,
    port,
    storeDir,
    async stop(keepStore = false) {
      await halt();
      if (!keepStore) rmSync(storeDir, { recursive: true, force: true });
    },
    async restart() {
      await halt();
      await launch();
    },
  };
}
