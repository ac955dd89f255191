import { defineExtractor, PLUGIN_API_VERSION } from '@tether/core';

/** The MQTT client identifier as the key (HAProxy: mqtt_field_value(connect,client_identifier)). */
export const clientId = defineExtractor({
  name: 'client-id',
  kind: 'extractor',
  apiVersion: PLUGIN_API_VERSION,
  version: '0.1.0',
  description: 'Key is the CONNECT client identifier; an empty client id is keyless.',
  create: () => ({ extract: (conn) => conn.connect.clientId || undefined }),
});
