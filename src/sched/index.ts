export { REAL_NONE, MAGLEV_SEED_OFFSET, MAGLEV_SEED_SKIP, maglev, maglevPermutation, type WeightedKey } from './maglev.js';
export { rotation, reduceWeights, scaleWeights } from './rotate.js';
export { buildTable, hashFieldsFor, slotShareMoved, type HashField, type TableIndexing, type BuildOptions } from './table.js';
export { TABLE_PRIMES, DEFAULT_TABLE_SIZE } from '../model/types.js';
export { candidates, lcDraw, lcBetter, exactPick, overhead, LC_KIND, lcWalks, overloadAfterBind, overloadAfterUnbind, drawnSize, LC_FALLBACK, type LcDest } from './lc.js';
