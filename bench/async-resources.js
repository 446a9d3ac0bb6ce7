// node bench/async-resources.js [variant] [workload] [concurrency]: the async resources (promises, ticks,
// timers) one query creates in a benchmark worker (bench/pg-worker.js, same setup), counted by an async_hooks
// init hook over a job of 1 000 and one of 3 000 queries, the difference divided: deterministic, unlike CPU
// time. QT_BENCH_URL is the server (its items table must exist: npm run bench creates it).
const { fork } = require('node:child_process');
const path = require('node:path');

/** Preloaded into the worker: counts every async resource's init, reported with each job's result. */
function countInThisWorker() {
  const counts = new Map();
  require('node:async_hooks')
    .createHook({ init: (_id, type) => counts.set(type, (counts.get(type) ?? 0) + 1) })
    .enable();
  const send = process.send.bind(process);
  process.send = (message, ...rest) => {
    if (message?.result) message.result.asyncResources = Object.fromEntries(counts);
    return send(message, ...rest);
  };
}

function main() {
  const [variant = 'querytrail', name = 'PK lookup', concurrency = '1'] = process.argv.slice(2);
  const child = fork(path.join(__dirname, 'pg-worker.js'), [JSON.stringify({ variant })], {
    execArgv: ['--require', __filename],
    env: { ...process.env, QT_COUNT_ASYNC_RESOURCES: '1' },
  });
  const job = (queries, warmup) => ({ name, concurrency: Number(concurrency), queries, warmup });
  // the first job warms up; the counts after the second and the third differ by 3 000 queries' worth
  const jobs = [job(1000, 2000), job(1000, 0), job(3000, 0)];
  const counts = [];
  child.on('message', (message) => {
    if (message.error) throw new Error(message.error);
    if (message.result) counts.push(message.result.asyncResources);
    const next = jobs.shift();
    if (next) return child.send(next);
    child.send('stop');
    const [, before, after] = counts;
    const perQuery = {};
    for (const type of Object.keys(after)) {
      const added = (after[type] - (before[type] ?? 0)) / 3000;
      if (added >= 0.01) perQuery[type] = Number(added.toFixed(2));
    }
    console.log(`${variant}, ${name}, concurrency ${concurrency}: async resources per query`, perQuery);
  });
}

if (process.env.QT_COUNT_ASYNC_RESOURCES) countInThisWorker();
else main();
