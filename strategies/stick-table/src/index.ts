import { stickTable } from './plugin.ts';

export { stickTable };
export { StickTable } from './stick-table.ts';
export type { StickTableOptions } from './stick-table.ts';
export default stickTable;
