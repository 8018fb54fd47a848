import type { Scenario } from '../lib/scenario.js';
import { contention } from './contention.js';
import { durability } from './durability.js';
import { etcd } from './etcd.js';
import { expiry } from './expiry.js';
import { fanout } from './fanout.js';
import { http } from './http.js';
import { idle } from './idle.js';
import { throughput } from './throughput.js';

/** Every scenario, in the order `npm run bench` runs them. */
export const SCENARIOS: Scenario[] = [throughput, contention, idle, durability, fanout, expiry, http, etcd];
