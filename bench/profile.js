// node bench/profile.js [variant] [workload]: a CPU profile of one benchmark job (bench/pg-worker.js, same
// setup), summarised by where the time goes: querytrail's own code, the OpenTelemetry SDK, the driver and
// ORM, Node itself; QT_PROFILE_TOP=N also lists the N functions with the most self time (V8 counts an
// inlined function's time as its caller's). QT_BENCH_URL is the server (its items table must exist: npm run
// bench creates it).
const { fork } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const [variant = 'querytrail', name = 'PK lookup', concurrency = '1'] = process.argv.slice(2);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qt-profile-'));
const child = fork(path.join(__dirname, 'pg-worker.js'), [JSON.stringify({ variant })]);
const profileFile = path.join(dir, 'job.cpuprofile');
const job = { name, concurrency: Number(concurrency), queries: 20000, warmup: 5000, profileFile };

const CATEGORIES = [
  ['querytrail: stack capture', /querytrail.*\/(callsite|site-capture|execution-site)\.js/],
  ['querytrail: hazards and ledger', /querytrail.*\/(hazards\/|ledger|report)\.?/],
  ['querytrail: statement analysis', /querytrail.*\/(statement|sql-lexer|fnv)\.js/],
  ['querytrail: tracker and seam', /querytrail.*\/(query-tracker|seam|trail|scope|database)\.js/],
  ['querytrail: instrumentations', /querytrail.*\/instrumentations\//],
  ['OpenTelemetry SDK and API', /node_modules\/@opentelemetry\//],
  ['pg', /node_modules\/(pg|pg-pool|pg-protocol|pg-types)\//],
  ['ORMs', /node_modules\/(knex|drizzle-orm|kysely|sequelize|typeorm|@prisma)\//],
  ['Node (sockets, timers, promises, async hooks)', /^(node:|internal\/|$)/],
];

child.on('message', (message) => {
  if (message.ready) return child.send(job);
  if (message.result) child.send('stop');
});
child.on('exit', () => {
  const profile = JSON.parse(fs.readFileSync(profileFile, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map();
  profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
  const totals = new Map();
  const byFunction = new Map();
  let all = 0;
  for (const [id, us] of self) {
    const { functionName, url } = byId.get(id).callFrame;
    if (functionName === '(idle)' || functionName === '(program)') continue;
    const where = url.replace(/^file:\/\//, '');
    const category =
      functionName === '(garbage collector)'
        ? 'garbage collector'
        : (CATEGORIES.find(([, re]) => re.test(where.replace(process.cwd(), 'querytrail')))?.[0] ?? 'other');
    totals.set(category, (totals.get(category) ?? 0) + us);
    const key = `${functionName || '(anonymous)'} ${path.basename(where)}:${byId.get(id).callFrame.lineNumber + 1}`;
    byFunction.set(key, (byFunction.get(key) ?? 0) + us);
    all += us;
  }
  console.log(
    `${variant}, ${name}, concurrency ${concurrency}: self time by where it goes (of ${(all / 1000).toFixed(0)} ms busy)`,
  );
  for (const [category, us] of [...totals].sort((a, b) => b[1] - a[1])) {
    console.log(`  ${category.padEnd(40)} ${((100 * us) / all).toFixed(1).padStart(5)} %`);
  }
  const top = Number(process.env.QT_PROFILE_TOP ?? 0);
  if (top > 0) console.log(`  top ${top} functions by self time:`);
  for (const [key, us] of [...byFunction].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`    ${((100 * us) / all).toFixed(1).padStart(5)} %  ${key}`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});
