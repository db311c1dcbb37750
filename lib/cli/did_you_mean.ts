/**
 * "Did you mean --keystore-password?": the closest known flag or command to a mistyped one, by
 * edit distance (`fastest-levenshtein`, loaded only when a word is unknown).
 *
 * @module
 */

import { loadLevenshtein } from "../deps.ts";

/**
 * The known word closest to `typed`, when it is close enough to be a typo: at most a third of
 * its length in edits (at least 2, so that two swapped letters count, at most 3), or `typed` is
 * the start of exactly one known word (`--keystore-pass`).
 *
 * @param typed What the user wrote, without leading dashes.
 * @param known The words that exist, without leading dashes.
 * @returns The suggestion, or `undefined` when none is close.
 */
export async function closestWord(
  typed: string,
  known: readonly string[],
): Promise<string | undefined> {
  const lower = typed.toLowerCase();
  if (lower === "") return undefined;
  const starts = known.filter((word) => word.startsWith(lower));
  if (starts.length === 1) return starts[0];
  const { distance } = await loadLevenshtein();
  const limit = Math.min(3, Math.max(2, Math.floor(lower.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const word of known) {
    const d = distance(lower, word);
    if (d < bestDistance) [best, bestDistance] = [word, d];
  }
  return bestDistance <= limit ? best : undefined;
}
