/**
 * The stage clock of a connection: each call tells the milliseconds since the previous one (or
 * since the clock was made), so every stage (`dns`, `tcp`, `tls`, ...) gets its own time.
 *
 * @module
 */

/** A clock whose every call returns the milliseconds since its previous call. */
export function lapTimer(): () => number {
  let mark = performance.now();
  return (): number => {
    const now = performance.now();
    const ms = now - mark;
    mark = now;
    return ms;
  };
}
