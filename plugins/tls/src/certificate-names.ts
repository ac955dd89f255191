import type { X509Certificate } from 'node:crypto';

/**
 * Subject alternative names as Node prints them (`DNS:a.test, email:x@y, URI:urn:x`), as a list
 * of `type:value` entries. Node quotes a value that contains a comma or a quote, JSON style
 * (`DNS:"a, b"`), so a plain split on ", " could cut a name in two; this reads the quotes.
 * `IP Address:` becomes `IP:`, the way OpenSSL's configuration writes it.
 */
export function parseSubjectAltNames(text: string | undefined): string[] {
  if (!text) return [];
  const names: string[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon).trim();
    let value: string;
    let next: number;
    if (text[colon + 1] === '"') {
      let end = colon + 2;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      value = JSON.parse(text.slice(colon + 1, end + 1)) as string;
      next = text.indexOf(',', end + 1);
    } else {
      next = text.indexOf(',', colon + 1);
      value = text.slice(colon + 1, next < 0 ? undefined : next);
    }
    names.push(`${type === 'IP Address' ? 'IP' : type}:${value.trim()}`);
    if (next < 0) break;
    i = next + 1;
  }
  return names;
}

/** The subject's common name (the last CN, as OpenSSL picks it), or undefined. */
export function commonName(subject: string | undefined): string | undefined {
  if (!subject) return undefined;
  let cn: string | undefined;
  for (const line of subject.split('\n')) if (line.startsWith('CN=')) cn = line.slice(3);
  return cn || undefined;
}

/**
 * The server names a certificate answers for: its DNS subject alternative names, or its CN when
 * it has none (what clients accept, RFC 6125). Lower case, for matching SNI.
 */
export function serverNamesOf(cert: X509Certificate): string[] {
  const dns = parseSubjectAltNames(cert.subjectAltName)
    .filter((n) => n.startsWith('DNS:'))
    .map((n) => n.slice(4).toLowerCase());
  if (dns.length > 0) return dns;
  const cn = commonName(cert.subject);
  return cn ? [cn.toLowerCase()] : [];
}
