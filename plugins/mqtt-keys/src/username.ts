import { defineExtractor, PLUGIN_API_VERSION } from '@tether/core';

/** The MQTT user name as the key: keeps all of a user's devices on one broker. */
export const username = defineExtractor({
  name: 'username',
  kind: 'extractor',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Key is the CONNECT user name; a client without one is keyless.',
  create: () => ({ extract: (conn) => conn.connect.username || undefined }),
});
