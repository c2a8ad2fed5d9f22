/**
 * Orders text by UTF-16 code units: deterministic, independent of locale, and free of ICU. A
 * single `localeCompare` pages in ICU's collator, about 3 MiB of resident memory in `run` on a
 * small box (README "Sizes and memory cost"), to order MACs, prefixes and addresses whose order
 * by code units is the one wanted anyway.
 */
export function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
