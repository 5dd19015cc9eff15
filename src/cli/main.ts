#!/usr/bin/env node
// libuv's thread pool runs gzip and fsync for concurrent SMTP sessions; its size is read once,
// when first used, so it is set before anything else is loaded.
process.env.UV_THREADPOOL_SIZE ??= '16';
const { run } = await import('./program.js');
await run(process.argv);
