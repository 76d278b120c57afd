// Copyright the @mpjs/multiprocessing authors. MIT license.
// The worker script of bench/pool.ts's workerpool peer.
import workerpool from "workerpool";
import { countPrimes, mapNoop, noop } from "./pool_peer.ts";

workerpool.worker({ noop, mapNoop, countPrimes });
