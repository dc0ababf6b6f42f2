/** The local image store (see docs/store.md). */
export { ImageStore, defaultStoreRoot, STORE_ENV, type StoreOptions, type StoreEntry } from './store';
export { storeName, parseStoreQuery, type StoreName, type StoreQuery } from './names';
export { collectGarbage, type GcResult } from './gc';
export { withLock, type LockOptions } from './lock';
export { loadArchiveIntoStore, type LoadArchiveOptions, type LoadArchiveResult, type LoadedImage } from './load';
