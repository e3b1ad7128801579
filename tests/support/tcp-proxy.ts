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
   * reply in its place (`-ERR ...`) on a connection that stays up; meant for a request that
   * travels alone in its packet. Resolves once the answer was withheld.
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
      upstream.once('data', () => {
        if (trap.how === 'cut') this.cut();
        else {
          client.write('-ERR the answer was lost on its way\r\n');
          upstream.pipe(client);
        }
        trap.sprung();
      });
      upstream.resume(); // unpipe paused it
    });
  }
}
