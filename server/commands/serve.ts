import { brokerOptionsFromArgs, optionsHelp } from '../cli-options.js';
import { startBroker } from '../index.js';

export const SERVE_HELP = `leasewire serve [flags] — run the broker (npm start)

Flags (each also read from the environment variable shown):
${optionsHelp()}
`;

/** Runs until SIGINT/SIGTERM, then tells every session to go away (1001) and exits 0. */
export async function serve(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(SERVE_HELP);
    return 0;
  }
  const broker = await startBroker(brokerOptionsFromArgs(argv, process.env));
  const where =
    broker.options.store === 'journal'
      ? `journal in ${broker.options.dataDir}, fsync ${broker.options.fsync}`
      : 'memory';
  out.write(`leasewire listening on ${broker.url} (store ${where}; HTTP on ${broker.httpUrl})\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`leasewire: ${signal}, closing sessions (going away) and exiting\n`);
      const force = setTimeout(() => resolve(1), broker.options.drainTimeoutMs + 3_000);
      force.unref();
      broker.close().then(
        () => resolve(0),
        (err: unknown) => {
          process.stderr.write(`leasewire: error while closing: ${String(err)}\n`);
          resolve(1);
        },
      );
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}
