import { defineExtractor } from '@tether/core';

/**
 * The stickiness key from an MQTT 5 CONNECT user property, such as a serial number the device
 * sends. A client without it (or an MQTT 3.1.1 client, which has no properties) gets undefined,
 * so the next extractor in `key:` tries.
 */
export default defineExtractor<{ property: string }>({
  name: 'acme:user-property',
  kind: 'extractor',
  apiVersion: 1,
  version: '1.0.0',
  description: 'Key is the value of an MQTT 5 CONNECT user property.',
  options: {
    property: { doc: 'Name of the user property that holds the key.', format: String, default: 'device-id' },
  },
  create(_ctx, { property }) {
    return {
      extract(conn) {
        // A property sent twice arrives as a list; the first one counts.
        const value = conn.connect.properties?.userProperties?.[property];
        const first = Array.isArray(value) ? value[0] : value;
        return first || undefined;
      },
    };
  },
});
