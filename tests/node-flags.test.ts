import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { productionNodeFlags } from './support/processes.js';

/**
 * The API's Node flags live in one place, `npm run start:api` (package.json): a young
 * generation of 64 MB per semi-space instead of Node 20's 16, because under a burst every
 * request allocates about 32 KB and each scavenge copies what the requests in flight hold
 * (bench/RESULTS.md, session 7). The image and the compose file start the API with the same
 * flags, and the process harness (tests, chaos, the bench) reads them from the script.
 */

const ROOT = resolve(import.meta.dirname, '..');
const read = (file: string) => readFileSync(join(ROOT, file), 'utf8');

describe("the API's Node flags", () => {
  const flags = productionNodeFlags(ROOT, 'api');

  it('are read from npm run start:api, --import tsx aside', () => {
    expect(flags).toEqual(['--max-semi-space-size=64']);
    expect(productionNodeFlags(ROOT, 'worker')).toEqual([]);
  });

  it('are the ones the image and the compose file start the API with', () => {
    const cmd = read('Dockerfile').match(/^CMD (\[.*\])$/m);
    expect(cmd, 'Dockerfile CMD').not.toBeNull();
    expect(JSON.parse(cmd![1]!)).toEqual(['node', ...flags, 'dist/services/api/server.js']);
    const compose = read('docker-compose.yml').match(/^ {4}command: (\[.*"dist\/services\/api\/server\.js"\])$/m);
    expect(compose, 'docker-compose.yml api command').not.toBeNull();
    expect(JSON.parse(compose![1]!)).toEqual(['node', ...flags, 'dist/services/api/server.js']);
  });
});
