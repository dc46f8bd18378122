/**
 * The id correspondence `states_equal()` builds between an old and a
 * current state (`struct bpf_idmap`).
 * @module
 */

/**
 * Where the temporary ids `check_scalar_ids()` gives zero ids start: past
 * every real id, flags included (ids stay below 2^30; `BPF_ADD_CONST`
 * flags are bits 30 and 31).
 */
const TMP_ID_BASE = 2 ** 32;

/**
 * Id correspondence between an old and a current state (`struct
 * bpf_idmap`): a short list scanned linearly, as the kernel does, reused
 * across comparisons (`reset_idmap_scratch()`).
 */
export class IdMap {
  private readonly olds: number[] = [];
  private readonly curs: number[] = [];
  private n = 0;
  private tmp = TMP_ID_BASE;

  /** Forgets every correspondence (`reset_idmap_scratch()`). */
  reset(): void {
    this.n = 0;
    this.tmp = TMP_ID_BASE;
  }

  /** Mirrors `check_ids()`: `oldId` and `curId` correspond, consistently. */
  check(oldId: number, curId: number): boolean {
    if (!oldId && !curId) return true;
    if (!oldId || !curId) return false;
    for (let i = 0; i < this.n; i++) {
      if (this.olds[i] === oldId) return this.curs[i] === curId;
      if (this.curs[i] === curId) return false;
    }
    this.olds[this.n] = oldId;
    this.curs[this.n] = curId;
    this.n++;
    return true;
  }

  /** Mirrors `check_scalar_ids()`: as {@link check}, a zero id unique. */
  checkScalar(oldId: number, curId: number): boolean {
    return this.check(oldId || ++this.tmp, curId || ++this.tmp);
  }
}
