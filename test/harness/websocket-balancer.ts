import { startBalancer, type TestBalancer } from './balancer.ts';

/** A balancer with a WebSocket listener named "ws" (and the plain one); `wsUrl` is its ws:// URL. */
export interface WsBalancer extends TestBalancer {
  readonly wsPort: number;
  readonly wsUrl: string;
}

/** startBalancer plus `listeners: [{ name: 'ws', address: '127.0.0.1:0', websocket }]`. */
export async function startWsBalancer(overrides: Record<string, unknown>, websocket: unknown = true): Promise<WsBalancer> {
  const balancer = await startBalancer({ listeners: [{ name: 'ws', address: '127.0.0.1:0', websocket }], ...overrides });
  const wsPort = balancer.server.addresses.get('ws')!.port;
  return Object.assign(balancer, { wsPort, wsUrl: `ws://127.0.0.1:${wsPort}/mqtt` });
}
