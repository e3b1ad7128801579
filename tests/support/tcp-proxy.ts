import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy the test controls, placed between services and a dependency (Postgres, Redis) so the
 * test can make the dependency unreachable without touching the real server: `cut()` resets
 * every open connection and refuses new ones, `restore()` lets traffic through again.
 */
export class TcpProxy {
  /** Connections refused while cut, and connections reset by a cut. */
  readonly stats = { accepted: 0, refused: 0, reset: 0 };
  private readonly open = new Set<Socket>();
  private isCut = false;
  private trap: { marker: Buffer; how: 'cut' | 'error'; sprung: () => void } | undefined;

  private constructor(
    private readonly server: Server,
    readonly port: number,
    private readonly target: { host: string; port: number },
  ) {}

  static async start(target: { host: string; port: number }): Promise<TcpProxy> {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const address = server.address();
    if (!address || typeof address === 'string') throw new Error('proxy has no port');
    const proxy = new TcpProxy(server, address.port, target);
    server.on('connection', (client) => proxy.accept(client));
    return proxy;
  }

  /** `url` (a postgres:// or redis:// URL) rewritten to go through this proxy. */
  route(url: string): string {
    const rewritten = new URL(url);
    rewritten.hostname = '127.0.0.1';
    rewritten.port = String(this.port);
    return rewritten.toString();
  }

  get isDown(): boolean {
    return this.isCut;
  }

  /** The dependency becomes unreachable: open connections are reset, new ones refused. */
  cut(): void {
    this.isCut = true;
    for (const socket of this.open) {
      socket.resetAndDestroy();
      this.stats.reset += 1;
    }
    this.open.clear();
  }

  /**
   * Ambiguous failures: the next request that contains `marker` reaches the server, and once the
   * server has answered, that answer never reaches the client. `cut`: the proxy cuts (as
   * `cut()`) and the client sees its connection reset. `error`: the client gets a Redis error
   * reply (`-ERR ...`) in place of each whole reply in the server's next packet, on a connection
   * that stays up: the answers to the request and to any sent just before it that were still
   * on their way (the API sends a batch's admission and its job's add together). Resolves once
   * the answer was withheld.
   */
  loseAnswerTo(marker: string, how: 'cut' | 'error'): Promise<void> {
    return new Promise((sprung) => {
      this.trap = { marker: Buffer.from(marker), how, sprung };
    });
  }

  restore(): void {
    this.isCut = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((done) => this.server.close(done));
  }

  private accept(client: Socket): void {
    if (this.isCut) {
      this.stats.refused += 1;
      client.resetAndDestroy();
      return;
    }
    this.stats.accepted += 1;
    const upstream = connect(this.target.port, this.target.host);
    this.open.add(client);
    this.open.add(upstream);
    const drop = () => {
      this.open.delete(client);
      this.open.delete(upstream);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      const trap = this.trap;
      if (!trap || !chunk.includes(trap.marker)) return;
      this.trap = undefined;
      // The request is already on its way upstream (pipe wrote it first); hold back the answer.
      upstream.unpipe(client);
      upstream.once('data', (answer: Buffer) => {
        if (trap.how === 'cut') this.cut();
        else {
          const { count, bytes } = wholeReplies(answer);
          client.write('-ERR the answer was lost on its way\r\n'.repeat(count));
          client.write(answer.subarray(bytes));
          upstream.pipe(client);
        }
        trap.sprung();
      });
      upstream.resume(); // unpipe paused it
    });
  }
}

/** How many whole RESP2 replies `data` starts with, and their length in bytes (a partial last one is left out). */
function wholeReplies(data: Buffer): { count: number; bytes: number } {
  let at = 0;
  const reply = (): boolean => {
    const end = data.indexOf('\r\n', at);
    if (end < 0) return false;
    const type = data[at];
    const size = Number(data.toString('latin1', at + 1, end));
    at = end + 2;
    if (type === 0x24 /* $ */ && size >= 0) {
      if (data.length < at + size + 2) return false;
      at += size + 2;
    }
    if (type === 0x2a /* * */) for (let i = 0; i < size; i++) if (!reply()) return false;
    return true;
  };
  let count = 0;
  let bytes = 0;
  while (at < data.length && reply()) {
    count += 1;
    bytes = at;
  }
  return { count, bytes };
}
