/** The package ships no types: its one export parses a text exposition into prom2json's shape. */
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
