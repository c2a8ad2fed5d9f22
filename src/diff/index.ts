export { diffConfig, formatDiff, tableMovesFor, type Change, type FieldChange, type DiffReport } from './diff.js';
