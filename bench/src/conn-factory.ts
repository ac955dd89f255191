import type { ConnInfo } from '@tether/core';
import { testConn } from '@tether/core/testing';
import type { Balancer } from './balancer.ts';
import type { Workload } from './workload.ts';

export type ConnFactory = (client: number) => ConnInfo;

/**
 * Makes each new connection of a client as the pipeline has it once the CONNECT is read: an MQTT
 * 3.1.1 CONNECT with the client's id, clean-session flag and user name, then the key from the
 * balancer's own extractor chain. Built with @tether/core/testing's testConn, which fills in every
 * other field the way the core does, so third-party strategies see a well-formed ConnInfo.
 * Connection ids count from 1 per factory, so a run does not depend on what ran before it.
 * Addresses are all loopback: strategies keyed on the client address are not meaningful here.
 */
export function connFactory(balancer: Balancer, workload: Workload): ConnFactory {
  let id = 0;
  return (client) => {
    const conn = testConn({
      id: ++id,
      connect: {
        clientId: workload.ids[client]!,
        clean: workload.persistent[client] === 0,
        ...(workload.usernames ? { username: workload.usernames[client]! } : {}),
      },
    });
    balancer.identify(conn);
    return conn;
  };
}
