/** An HTTP/1.1 request head: the request line and the headers, names lower-cased. */
export interface RequestHead {
  readonly method: string;
  /** The request target as sent (path and query). */
  readonly target: string;
  readonly version: string;
  /** Header values by lower-case name; repeated headers are joined with ", " (RFC 9110 5.3). */
  readonly headers: ReadonlyMap<string, string>;
  /** Bytes of the head, the blank line included: where the WebSocket frames begin. */
  readonly length: number;
}

export type HeadResult =
  | { readonly kind: 'need-more' }
  | { readonly kind: 'done'; readonly head: RequestHead }
  | { readonly kind: 'too-large' }
  | { readonly kind: 'malformed'; readonly detail: string };

const NEED_MORE: HeadResult = Object.freeze({ kind: 'need-more' });
const TOO_LARGE: HeadResult = Object.freeze({ kind: 'too-large' });
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const REQUEST_LINE = /^([A-Z]{1,16}) (\S{1,8192}) (HTTP\/1\.[01])$/;
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Reads the head of an HTTP/1.1 request from the bytes received so far. Pure: it never changes
 * the bytes, so a pass-through can forward them. Bounded: a head longer than `maxBytes` is refused
 * as soon as that many bytes arrived without its end, and bytes that cannot start a request line
 * (an MQTT CONNECT sent to the WebSocket port) are refused from the first one.
 */
export function readRequestHead(view: Buffer, maxBytes: number): HeadResult {
  if (view.length === 0) return NEED_MORE;
  const first = view[0]!;
  if (first < 0x41 || first > 0x5a) return { kind: 'malformed', detail: `first byte 0x${first.toString(16).padStart(2, '0')} cannot start an HTTP request line` };
  const end = view.indexOf(HEAD_END, 0);
  if (end < 0) return view.length >= maxBytes ? TOO_LARGE : NEED_MORE;
  if (end + HEAD_END.length > maxBytes) return TOO_LARGE;
  const lines = view.toString('latin1', 0, end).split('\r\n');
  const line = REQUEST_LINE.exec(lines[0]!);
  if (!line) return { kind: 'malformed', detail: `bad request line "${lines[0]!.slice(0, 64)}"` };
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const text = lines[i]!;
    const colon = text.indexOf(':');
    const name = colon > 0 ? text.slice(0, colon) : '';
    if (!TOKEN.test(name)) return { kind: 'malformed', detail: `bad header line "${text.slice(0, 64)}"` };
    const key = name.toLowerCase();
    const value = text.slice(colon + 1).trim();
    const before = headers.get(key);
    headers.set(key, before === undefined ? value : `${before}, ${value}`);
  }
  return { kind: 'done', head: { method: line[1]!, target: line[2]!, version: line[3]!, headers, length: end + HEAD_END.length } };
}

/** The comma-separated tokens of a header value, lower-cased (`Connection: keep-alive, Upgrade`). */
export function headerTokens(value: string | undefined): string[] {
  if (value === undefined) return [];
  return value.split(',').map((t) => t.trim().toLowerCase()).filter((t) => t.length > 0);
}
