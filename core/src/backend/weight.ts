/** A backend's weight: the same range in the configuration, the admin API and the CLI (HAProxy's is 0–256; 0 is `drain` here). */
export const WEIGHT_MIN = 1;
export const WEIGHT_MAX = 256;

export function isWeight(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= WEIGHT_MIN && (value as number) <= WEIGHT_MAX;
}
