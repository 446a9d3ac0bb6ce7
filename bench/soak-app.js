// The soak app (bench/soak.js runs it under the agent): every request clones an init-time knex base five
// times and runs five raw pg queries; GET /heap answers the heap after a full GC.
const express = require('express');
const knex = require('knex');
const pg = require('pg');

const db = knex({ client: 'pg', connection: process.env.QT_BENCH_URL, pool: { min: 2, max: 4 } });
const pool = new pg.Pool({ connectionString: process.env.QT_BENCH_URL, max: 4 });
const base = db('items').select('id', 'name'); // built at init: every request clones it

const app = express();
app.get('/r', async (req, res) => {
  for (let i = 0; i < 5; i++) await base.clone().where('id', (i % 3) + 1);
  for (let i = 0; i < 5; i++) await pool.query('SELECT name FROM items WHERE id = $1', [(i % 3) + 1]);
  res.end('ok');
});
app.get('/heap', (req, res) => {
  global.gc();
  global.gc();
  res.json(process.memoryUsage());
});
const server = app.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
process.once('SIGTERM', () => {
  server.close();
  Promise.all([db.destroy(), pool.end()]).then(() => process.exit(0));
});
