import { createSocket, type Socket } from 'node:dgram';
import dnsPacket, { type Answer } from 'dns-packet';

/** What the server does with a query: answer from its records, stay silent (a resolver timeout), or SERVFAIL. */
export type DnsMode = 'answer' | 'drop' | 'servfail';

export interface SrvRecord {
  readonly target: string;
  readonly port: number;
  readonly priority?: number;
  readonly weight?: number;
}

const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;

/**
 * A small authoritative DNS server on 127.0.0.1 (UDP, a free port) whose records the test changes
 * while it runs: `setA`, `setSrv`, `remove`. A name without records of the asked type gets an
 * empty NOERROR answer (NODATA), an unknown name NXDOMAIN. `reverse` answers every record set in
 * the opposite order from the one it was given; `queries` counts what it was asked.
 */
export class TestDnsServer {
  readonly #socket: Socket;
  readonly #records = new Map<string, Answer[]>();
  mode: DnsMode = 'answer';
  reverse = false;
  queries = 0;

  private constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('message', (msg, from) => this.#answer(msg, from.port, from.address));
  }

  static async start(): Promise<TestDnsServer> {
    const socket = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(0, '127.0.0.1', () => resolve());
    });
    return new TestDnsServer(socket);
  }

  /** `127.0.0.1:PORT`, for a provider's `resolvers`. */
  get address(): string {
    return `127.0.0.1:${this.#socket.address().port}`;
  }

  setA(name: string, addresses: readonly string[], ttl = 1): void {
    this.#set(name, 'A', addresses.map((data) => ({ type: 'A', name, ttl, data })));
  }

  setSrv(name: string, records: readonly SrvRecord[], ttl = 1): void {
    this.#set(name, 'SRV', records.map((r) => ({ type: 'SRV', name, ttl, data: { target: r.target, port: r.port, priority: r.priority ?? 10, weight: r.weight ?? 1 } })));
  }

  remove(name: string): void {
    for (const key of [...this.#records.keys()]) if (key.endsWith(` ${name.toLowerCase()}`)) this.#records.delete(key);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(() => resolve()));
  }

  #set(name: string, type: string, answers: Answer[]): void {
    this.#records.set(`${type} ${name.toLowerCase()}`, answers);
  }

  #answer(msg: Buffer, port: number, address: string): void {
    this.queries++;
    if (this.mode === 'drop') return;
    let query;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      return;
    }
    const question = query.questions?.[0];
    if (!question) return;
    const name = question.name.toLowerCase();
    const known = [...this.#records.keys()].some((k) => k.endsWith(` ${name}`));
    const found = this.#records.get(`${question.type} ${name}`) ?? [];
    const answers = this.reverse ? [...found].reverse() : found;
    const rcode = this.mode === 'servfail' ? RCODE_SERVFAIL : known ? 0 : RCODE_NXDOMAIN;
    const reply = dnsPacket.encode({
      type: 'response', id: query.id ?? 0, flags: dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.RECURSION_DESIRED | rcode,
      questions: query.questions ?? [], answers: this.mode === 'answer' ? answers : [],
    });
    this.#socket.send(reply, port, address);
  }
}
