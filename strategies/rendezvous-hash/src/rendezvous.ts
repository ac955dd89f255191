import type { Backend } from '@tether/core';

export type Hash32 = (input: string, seed?: number) => number;

const KEY_SEED = 0x7e7e_7e7e;
const TWO_POW_32 = 2 ** 32;
const TWO_POW_53 = 2 ** 53;

/** MurmurHash3's 32-bit finalizer: spreads every input bit over the whole word. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85eb_ca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2_ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * Weighted rendezvous (highest random weight) hashing. Every (key, backend) pair gets a
 * pseudo-random score u in (0,1), turned into `weight / -ln(u)`; the highest score wins. Because a
 * pair's score never depends on the other backends, adding a backend moves only the keys it now
 * wins (about 1/(N+1) of them, all onto it) and removing one moves only its own keys; because the
 * score depends only on the key and the backend's name, every process agrees without sharing state.
 *
 * Cost per selection: one xxHash32 of the key, then two integer mixes and one log per backend.
 */
export class Rendezvous {
  readonly #hash: Hash32;
  readonly #backendHashes = new Map<string, number>();

  constructor(hash: Hash32) {
    this.#hash = hash;
  }

  pick(key: string, backends: readonly Backend[]): Backend | undefined {
    const keyHash = this.#hash(key, KEY_SEED);
    let best: Backend | undefined;
    let bestScore = -Infinity;
    for (const backend of backends) {
      const score = backend.weight / -Math.log(this.unit(keyHash, this.#backendHash(backend.id)));
      if (score > bestScore) {
        bestScore = score;
        best = backend;
      }
    }
    return best;
  }

  /** A 53-bit uniform number in (0,1) for one pair; exposed for tests of the distribution. */
  unit(keyHash: number, backendHash: number): number {
    const high = fmix32(keyHash ^ backendHash);
    const low = fmix32(high ^ Math.imul(backendHash, 0x9e37_79b9) ^ keyHash);
    // 21 bits of `high` above 32 of `low`: a 53-bit integer, centred in its cell so u is never 0 or 1.
    return ((high >>> 11) * TWO_POW_32 + low + 0.5) / TWO_POW_53;
  }

  #backendHash(id: string): number {
    let h = this.#backendHashes.get(id);
    if (h === undefined) {
      h = this.#hash(id, 0);
      this.#backendHashes.set(id, h);
    }
    return h;
  }
}
