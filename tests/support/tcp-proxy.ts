import { createServer, connect, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy the test controls, placed between services and a dependency (Postgres) so the
 * test can make the dependency unreachable without touching the real server: `cut()` resets
 * every open connection and refuses new ones, `restore()` lets traffic through again.
 */
export class TcpProxy {
  /** Connections refused while cut, and connections reset by a cut. */
  readonly stats = { accepted: 0, refused: 0, reset: 0 };
  private readonly open = new Set<Socket>();
  private isCut = false;

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
  }
}
