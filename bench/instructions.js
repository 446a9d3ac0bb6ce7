// npm run bench:instructions — the bench's workloads and variants (bench/common.js), each worker run under
// valgrind's callgrind, which counts the instructions the process executes (all its threads, user space).
// A count does not depend on what else the machine is doing, so unlike CPU time it repeats from run to run,
// and the variants run side by side. callgrind dumps its counters each time node calls uv_getrusage, which
// the worker does only through process.cpuUsage() right before and right after a measured job: the dump
// at the end of a job holds that job's instructions and nothing else. Not counted: the kernel's work
// (system calls, page faults) and waiting.
//
// A job's instructions are split by the function that executed them: the garbage collector's (V8's heap
// code, on any thread), the optimising compilers' (TurboFan and Maglev, on background threads), and the
// rest — the execution: JavaScript, builtins, the runtime, libuv. The execution repeats within 2–5 % from
// job to job; the collector's and the compilers' come in lumps (a major collection costs 150–280 million
// instructions in this worker, and V8 re-optimises now and then), so their mean over the jobs is given.
// V8 tiers code up later under valgrind than on the CPU: the first WARM_JOBS jobs of a workload are not
// counted (QT_BENCH_WARM_JOBS, 3 by default). Code that runs once per driver query settles only after 1 400–2 400
// queries (V8 optimises it late): a workload that sends one query for several calls (prisma at concurrency 8 batches
// eight findUniques into one) needs that many times the jobs, e.g. QT_BENCH_JOBS=26 QT_BENCH_WARM_JOBS=18.
// Workers run with V8's --predictable (QT_BENCH_NODE_FLAGS replaces it): compilation and collection on the
// main thread, in the same order every run. Without it a variant's level moved by up to 10 000 instructions a
// query from one run to the next (prisma at concurrency 8: bare 288–299k); with it, two runs agree within 1 500.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { instructionsOf, totalOf } = require('./callgrind.js');
const { VARIANTS, WORKLOADS, median, serverUrl, startWorker } = require('./common.js');

const QUERIES = Number(process.env.QT_BENCH_QUERIES ?? 1000);
const JOBS = Number(process.env.QT_BENCH_JOBS ?? 7);
const WARM_JOBS = Number(process.env.QT_BENCH_WARM_JOBS ?? 3);
if (!(JOBS > WARM_JOBS)) throw new Error(`QT_BENCH_JOBS must be over ${WARM_JOBS}`);

try {
  execFileSync('valgrind', ['--version']);
} catch {
  throw new Error('bench/instructions.js needs valgrind (Debian: apt-get install valgrind)');
}

/** The instructions of the last dump callgrind wrote to `prefix`.N, then all of them removed. */
function lastDump(prefix) {
  const dir = path.dirname(prefix);
  const dumps = fs
    .readdirSync(dir)
    .filter((f) => f.startsWith(`${path.basename(prefix)}.`))
    .map((f) => path.join(dir, f))
    .sort((a, b) => Number(path.extname(a).slice(1)) - Number(path.extname(b).slice(1)));
  const dump = fs.readFileSync(dumps.at(-1), 'utf8');
  const counts = instructionsOf(dump);
  for (const file of dumps) fs.rmSync(file);
  // the split is of self costs: its parts add up to callgrind's own total, or the dump was misread
  const total = totalOf(dump);
  if (total !== counts.execution + counts.gc + counts.compiler)
    throw new Error(
      `${dumps.at(-1)}: its parts add up to ${counts.execution + counts.gc + counts.compiler}, not ${total}`,
    );
  return counts;
}

/** A variant's instructions per query, job by job, on every workload: one callgrind'd worker. */
async function countVariant(variant, index, url, dir) {
  const prefix = path.join(dir, `variant${index}`);
  const worker = startWorker(
    variant,
    url,
    ['valgrind', '--tool=callgrind', '--quiet', `--callgrind-out-file=${prefix}`, '--dump-before=uv_getrusage'],
    ['--predictable'],
  );
  await worker.ready;
  const counts = {};
  for (const { name, concurrency } of WORKLOADS) {
    const jobs = [];
    for (let job = 0; job < JOBS; job++) {
      await worker.run({ name, concurrency, queries: QUERIES, warmup: 200, gcProfile: false });
      const { execution, gc, compiler } = lastDump(prefix);
      jobs.push({ execution: execution / QUERIES, gc: gc / QUERIES, compiler: compiler / QUERIES });
    }
    counts[`${name}, concurrency ${concurrency}`] = jobs.slice(WARM_JOBS);
    const k = (n) => (n / 1000).toFixed(0);
    process.stdout.write(
      `${variant}: ${name} c=${concurrency}, k instructions/query by job (execution+gc+compiler): ` +
        `${jobs.map((j) => `${k(j.execution)}+${k(j.gc)}+${k(j.compiler)}`).join(' ')}\n`,
    );
  }
  await worker.stop();
  return counts;
}

async function main() {
  const { url, stop, source } = await serverUrl();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'querytrail-callgrind-'));
  console.log(
    `querytrail instruction bench: ${JOBS} jobs of ${QUERIES} queries per workload under callgrind (the first ` +
      `${WARM_JOBS} not counted), server ${source ?? url}`,
  );
  const counts = {};
  // all at once: a count does not depend on the load
  await Promise.all(
    VARIANTS.map(async (variant, index) => (counts[variant] = await countVariant(variant, index, url, dir))),
  );
  fs.rmSync(dir, { recursive: true, force: true });
  await stop();
  const k = (n) => (n / 1000).toFixed(1);
  const mean = (xs) => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const { name, concurrency } of WORKLOADS) {
    const workload = `${name}, concurrency ${concurrency}`;
    // the execution's median (steady), the lumps' mean
    const of = (variant) => {
      const jobs = counts[variant][workload];
      const execution = jobs.map((j) => j.execution);
      const gc = mean(jobs.map((j) => j.gc));
      const compiler = mean(jobs.map((j) => j.compiler));
      return { execution, gc, compiler, total: median(execution) + gc + compiler };
    };
    const bare = of('bare');
    const contrib = of('OTel contrib');
    console.log(`\n${workload} (k instructions per query)`);
    console.log(
      '  variant                            execution [min–max]   GC    compiler  total  added: execution' +
        '  total  ratio to contrib: execution  total',
    );
    for (const variant of VARIANTS) {
      const v = of(variant);
      const addedExecution = median(v.execution) - median(bare.execution);
      const addedTotal = v.total - bare.total;
      const ratios =
        variant === 'bare'
          ? ''
          : `${(addedExecution / (median(contrib.execution) - median(bare.execution))).toFixed(2).padStart(27)}` +
            `${(addedTotal / (contrib.total - bare.total)).toFixed(2).padStart(7)}`;
      const spread = `${k(median(v.execution))} [${k(Math.min(...v.execution))}–${k(Math.max(...v.execution))}]`;
      console.log(
        `  ${variant.padEnd(33)} ${spread.padEnd(21)} ${k(v.gc).padStart(5)} ${k(v.compiler).padStart(9)}` +
          ` ${k(v.total).padStart(6)} ${k(addedExecution).padStart(17)} ${k(addedTotal).padStart(6)}${ratios}`,
      );
    }
  }
}
main().catch((err) => {
  console.error(err);
  process.exit(1);
});
