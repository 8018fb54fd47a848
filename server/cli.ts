#!/usr/bin/env node
import { ACQUIRE_HELP, acquire } from './commands/acquire.js';
import { ELECT_HELP, elect } from './commands/elect.js';
import { LS_HELP, ls } from './commands/ls.js';
import { SERVE_HELP, serve } from './commands/serve.js';
import { WATCH_HELP, watch } from './commands/watch.js';

const USAGE = `leasewire — a lease broker over WebSockets

Usage:
  leasewire serve [flags]                 run the broker (npm start)
  leasewire ls [prefix]                   list held leases
  leasewire watch [prefix]                follow ownership changes
  leasewire acquire NAME -- CMD [ARGS]    hold a lease while CMD runs
  leasewire elect NAME -- CMD [ARGS]      run CMD only while leader
  leasewire COMMAND --help                flags of a command

`;

const HELP: Record<string, string> = {
  serve: SERVE_HELP,
  ls: LS_HELP,
  watch: WATCH_HELP,
  acquire: ACQUIRE_HELP,
  elect: ELECT_HELP,
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const stop = new AbortController();
  if (command !== 'serve') {
    // Client commands: the first signal stops cleanly (releases, forwards to the child); a second one exits.
    const onSignal = () => {
      if (stop.signal.aborted) process.exit(130);
      stop.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  const out = process.stdout;
  switch (command) {
    case 'serve':
      return serve(rest, out);
    case 'ls':
      return ls(rest, out);
    case 'watch':
      return watch(rest, out, stop.signal);
    case 'acquire':
      return acquire(rest, out, stop.signal);
    case 'elect':
      return elect(rest, out, stop.signal);
    case undefined:
    case '--help':
    case '-h':
    case 'help': {
      const topic = rest[0] ? HELP[rest[0]] : undefined;
      out.write(topic ?? USAGE);
      return 0;
    }
    default:
      process.stderr.write(`leasewire: unknown command ${command}\n\n${USAGE}`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Client commands may leave the SDK's reconnect timers behind after close(); do not hang on them.
    // Exit once stdout has taken everything written before (a pipe is written asynchronously).
    setImmediate(() => process.stdout.write('', () => process.exit(code))).unref();
  },
  (err: unknown) => {
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`leasewire: ${msg}\n`);
    process.exit(err instanceof RangeError || err instanceof TypeError ? 2 : 1);
  },
);
