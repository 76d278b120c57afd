// Copyright the @mpjs/multiprocessing authors. MIT license.
// Registered classes and worker targets for tests/register_class_test.ts.
import { type Connection, type Lock, type Queue, registerClass } from "../../mod.ts";

export const url: string = import.meta.url;

/** A registered class with fields, a method and room for links to others. */
export class Point {
  label = "";
  next: Point | undefined;
  extra: unknown;
  constructor(public x: number, public y: number) {}
  norm(): number {
    return Math.hypot(this.x, this.y);
  }
}
registerClass(Point, { module: import.meta.url });

/** A registered class holding a library handle. */
export class Guarded {
  constructor(public lock: Lock, public count: number) {}
  bump(): number {
    this.lock.acquireSync();
    try {
      return ++this.count;
    } finally {
      this.lock.release();
    }
  }
}
registerClass(Guarded, { module: import.meta.url });

/** A subclass of a registered class, itself not registered. */
export class Point3 extends Point {
  z = 0;
}

/** Reports on `out` what the thread received in `args`, then sends a new Point back. */
export function describeArgs(p: Point, g: Guarded, out: Queue<unknown>): void {
  out.putSync({
    isPoint: p instanceof Point,
    norm: p.norm(),
    cycle: p.next === p,
    bumped: g instanceof Guarded ? g.bump() : -1,
  });
  const back = new Point(6, 8);
  back.label = "from the thread";
  out.putSync(back);
}

/** Takes one item from `q` and reports its norm, or the error's message. */
export function takeAndReport(q: Queue<Point>, out: Queue<string>): void {
  try {
    const p = q.getSync({ timeout: 30_000 });
    out.putSync(`norm ${(p as Point).norm()}`);
  } catch (e) {
    out.putSync(`${(e as Error).name}: ${(e as Error).message}`);
  }
}

/** Receives a Point on `end` and sends back one twice as far. */
export function doubleOverPipe(end: Connection<Point>): void {
  const p = end.recvSync();
  end.send(new Point(p.x * 2, p.y * 2));
}

/** A pool task: a Point from a pair, checked to be rebuilt as one. */
export function scale(p: Point): Point {
  if (!(p instanceof Point)) throw new TypeError("not a Point");
  return new Point(p.x * 10, p.y * 10);
}
