import type { Scenario } from '../lib/scenario.js';
import { durability } from './durability.js';
import { expiry } from './expiry.js';
import { fanout } from './fanout.js';
import { throughput } from './throughput.js';

/** Every scenario, in the order `npm run bench` runs them. */
export const SCENARIOS: Scenario[] = [throughput, durability, fanout, expiry];
