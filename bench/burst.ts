import { BURST_HELP, parseBurstArgs, UsageError } from './lib/options.js';
import { writeReportFiles } from './lib/output.js';
import { formatReport } from './lib/report.js';
import { runBurst, type ProgressSink } from './lib/run-burst.js';

/**
 * `npm run burst -- [options]`: the sales-open simulator. Exit code: 0 audit passed, 1 audit
 * failed, 2 bad options, 3 the run could not be carried out.
 */

async function main(): Promise<number> {
  let options;
  try {
    options = parseBurstArgs(process.argv.slice(2), process.env);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`burst: ${error.message}\n\nRun with --help for the options.\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${BURST_HELP}\n`);
    return 0;
  }

  const tty = process.stderr.isTTY;
  let lastPrinted = 0;
  // On a terminal one line rewritten in place; in a log, a line every five seconds.
  const progress: ProgressSink | null = !options.progress
    ? null
    : (line, final) => {
        if (tty) process.stderr.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
        else if (final || Date.now() - lastPrinted >= 5_000) {
          lastPrinted = Date.now();
          process.stderr.write(`${line}\n`);
        }
      };

  try {
    const report = await runBurst(options, progress);
    process.stdout.write(`${formatReport(report)}\n`);
    await writeReportFiles(report, options);
    if (options.json) process.stdout.write(`JSON report: ${options.json}\n`);
    if (options.html) process.stdout.write(`HTML report: ${options.html}\n`);
    return report.verdict === 'fail' ? 1 : 0;
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`\nburst: the run failed: ${message}\n`);
    return 3;
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`burst: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(3);
  },
);
