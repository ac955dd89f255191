import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ListenerConfig } from '../../src/config/types.ts';
import { ListenError } from '../../src/errors.ts';
import { ListenerSet } from '../../src/net/listener-set.ts';

const open: (ListenerSet | Server | Socket)[] = [];
afterEach(async () => {
  const all = open.splice(0);
  // Sockets first: a server closes only once its connections are gone.
  for (const o of all) if (!(o instanceof ListenerSet) && 'destroy' in o) o.destroy();
  for (const o of all) {
    if (o instanceof ListenerSet) await o.close();
    else if (!('destroy' in o)) await new Promise<void>((resolve) => o.close(() => resolve()));
  }
});

const listener = (name: string, port = 0): ListenerConfig => ({ name, address: { host: '127.0.0.1', port }, transports: [] });

function setup(): { set: ListenerSet; accepted: string[] } {
  const accepted: string[] = [];
  const set = new ListenerSet((socket, name) => {
    accepted.push(name);
    open.push(socket);
  });
  open.push(set);
  return { set, accepted };
}

/** Connects and resolves once the TCP handshake is done (or rejects: refused). */
function dial(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    open.push(s);
    s.once('error', reject);
  });
}

/** A free port: bound then released, for a listener that must move to a known address. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((resolve) => s.close(() => resolve()));
  return port;
}

describe('ListenerSet', () => {
  it('binds every listener and names the accepting one', async () => {
    const { set, accepted } = setup();
    (await set.prepare([listener('main'), listener('tls')])).commit();
    const ports = [...set.addresses.values()].map((a) => a.port);
    await dial(ports[1]!);
    await dial(ports[0]!);
    await expect.poll(() => accepted).toEqual(['tls', 'main']);
  });

  it('a listener whose address is unchanged keeps its socket: the same port, and a connection accepted before the reload stays open', async () => {
    const { set } = setup();
    (await set.prepare([listener('main')])).commit();
    const before = set.addresses.get('main')!;
    const client = await dial(before.port);
    const changes = (await set.prepare([listener('main'), listener('extra')])).commit();
    expect(set.addresses.get('main')).toEqual(before);
    expect(changes).toEqual([expect.stringMatching(/^listener extra opened on 127\.0\.0\.1:\d+$/)]);
    expect(client.destroyed).toBe(false);
    await dial(before.port);
  });

  it('a moved listener is bound at its new address before the old one stops accepting; a removed one stops accepting', async () => {
    const { set } = setup();
    (await set.prepare([listener('main'), listener('gone')])).commit();
    const old = set.addresses.get('main')!;
    const gone = set.addresses.get('gone')!;
    const target = await freePort();
    const plan = await set.prepare([listener('main', target)]);
    // Prepared, not committed: both addresses accept.
    await dial(old.port);
    await dial(target);
    expect(plan.commit()).toEqual([`listener main moved 127.0.0.1:${old.port} → 127.0.0.1:${target}`, `listener gone on 127.0.0.1:${gone.port} closed (its connections go on)`]);
    await expect(dial(old.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(dial(gone.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await dial(target);
  });

  it('a listener that cannot bind fails the plan with the option to change, and what it bound is closed again', async () => {
    const { set } = setup();
    (await set.prepare([listener('main')])).commit();
    const busy = createServer();
    open.push(busy);
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const busyPort = (busy.address() as AddressInfo).port;
    const fresh = await freePort();
    const err = await set.prepare([listener('main'), listener('new', fresh), listener('clash', busyPort)]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ListenError);
    expect((err as Error).message).toBe(`127.0.0.1:${busyPort} is already in use; choose another address with listeners[name=clash].address`);
    await expect(dial(fresh)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect([...set.addresses.keys()]).toEqual(['main']);
  });

  it('rollback closes what a plan bound and leaves the running listeners as they were', async () => {
    const { set } = setup();
    (await set.prepare([listener('main')])).commit();
    const fresh = await freePort();
    const plan = await set.prepare([listener('main'), listener('new', fresh)]);
    await plan.rollback();
    await expect(dial(fresh)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await dial(set.addresses.get('main')!.port);
  });
});
