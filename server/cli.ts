#!/usr/bin/env node
import { brokerOptionsFromArgs, optionsHelp } from './cli-options.js';
import { startBroker } from './index.js';

const USAGE = `leasewire — a lease broker over WebSockets

Usage:
  leasewire serve [flags]     run the broker (npm start)
  leasewire --help

Flags of serve (each also read from the environment variable shown):
${optionsHelp()}
`;

async function serve(args: string[]): Promise<void> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  const options = brokerOptionsFromArgs(args, process.env);
  const broker = await startBroker(options);
  process.stdout.write(`leasewire listening on ${broker.url} (store ${broker.options.store})\n`);
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stderr.write(`leasewire: ${signal}, closing sessions (going away) and exiting\n`);
    const force = setTimeout(() => process.exit(1), broker.options.drainTimeoutMs + 3_000);
    force.unref();
    broker.close().then(
      () => process.exit(0),
      (err: unknown) => {
        process.stderr.write(`leasewire: error while closing: ${String(err)}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      await serve(rest);
      return -1;
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(USAGE);
      return 0;
    default:
      process.stderr.write(`leasewire: unknown command ${command}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`leasewire: ${msg}\n`);
    process.exit(err instanceof RangeError || err instanceof TypeError ? 2 : 1);
  },
);
