// 'smtp-server-rs/lib/types': the interfaces, for `import type { ... } from 'smtp-server-rs/lib/types'`.
export type * from '../index';
