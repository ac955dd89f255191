/** One answer to a scrape: the Prometheus text exposition and its content type. */
export interface Exposition {
  /** `text/plain; version=0.0.4; charset=utf-8` (prom-client's Registry.PROMETHEUS_CONTENT_TYPE). */
  readonly contentType: string;
  readonly body: string;
}
