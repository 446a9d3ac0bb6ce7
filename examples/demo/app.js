// A small shop API with the bugs querytrail exists for, each in a handler written the way apps write it.
// `npm run demo` starts a PostgreSQL primary, its streaming hot standby and a second database ("analytics",
// a second shard), then runs this file under `node --require querytrail/agent`: it calls its own routes.
const http = require('node:http');
const express = require('express');
const knex = require('knex');
const pg = require('pg');
const { drizzle } = require('drizzle-orm/node-postgres');
const { pgTable, integer, text } = require('drizzle-orm/pg-core');
const { inArray, eq } = require('drizzle-orm');
const { withReplicas } = require('drizzle-orm/pg-core');
const { Kysely, PostgresDialect } = require('kysely');
const { Sequelize, DataTypes, QueryTypes } = require('sequelize');

const { QT_PRIMARY, QT_STANDBY, QT_ANALYTICS } = process.env;
const host = (url) => ({ host: new URL(url).hostname, port: Number(new URL(url).port) });
const password = decodeURIComponent(new URL(QT_PRIMARY).password);

// ---- data access, set up at module load ----
const shop = knex({ client: 'pg', connection: QT_PRIMARY });
const analytics = knex({ client: 'pg', connection: QT_ANALYTICS });
const items = pgTable('items', { id: integer('id').primaryKey(), name: text('name') });
const [primaryDb, standbyDb] = [QT_PRIMARY, QT_STANDBY].map((url) => drizzle(new pg.Pool({ connectionString: url })));
const routed = withReplicas(primaryDb, [standbyDb]);
const shards = [QT_PRIMARY, QT_ANALYTICS].map(
  (url) => new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }) }),
);
const sequelize = new Sequelize('qt_app', 'postgres', password, {
  dialect: 'postgres',
  logging: false,
  replication: { read: [host(QT_STANDBY)], write: host(QT_PRIMARY) },
});
const Author = sequelize.define('Author', { name: DataTypes.TEXT }, { tableName: 'authors', timestamps: false });
const Article = sequelize.define('Article', { title: DataTypes.TEXT }, { tableName: 'articles', timestamps: false });
const Follower = sequelize.define(
  'Follower',
  {
    authorId: { type: DataTypes.INTEGER, primaryKey: true },
    followerId: { type: DataTypes.INTEGER, primaryKey: true },
  },
  { timestamps: false },
);
Article.belongsTo(Author, { foreignKey: 'author_id', as: 'author' });
Author.hasMany(Follower, { foreignKey: 'authorId', as: 'followers' });
const analyticsDb = new Sequelize(QT_ANALYTICS, { logging: false });
const Report = analyticsDb.define('Report', { name: DataTypes.TEXT }, { tableName: 'items', timestamps: false });

// ---- query objects built once, at import, "to save work" ----
const promotedIds = analytics('items').select('id'); // bound to the analytics database, for good
const published = shop('items').where('created_at', '<=', new Date()); // the cut-off is the boot time
const pinnedIds = routed.select({ id: items.id }).from(items); // withReplicas picked the standby, now

const app = express();
app.get('/items/promoted', async (req, res) => {
  res.json(await shop('items').whereIn('id', promotedIds).pluck('id')); // sub-query of another database
});
app.get('/items/pinned', async (req, res) => {
  const rows = await primaryDb.select({ id: items.id }).from(items).where(inArray(items.id, pinnedIds)); // the standby's
  res.json(rows.map((r) => r.id));
});
app.get('/items/published', async (req, res) => {
  res.json(await published.clone().orderBy('id').pluck('id')); // built at init: the boot-time cut-off
});
app.get('/items/everywhere', async (req, res) => {
  const [main, second] = shards;
  const onSecond = second.selectFrom('items').select('id'); // a sub-query of the second shard...
  const rows = await main.selectFrom('items').select('id').where('id', 'in', onSecond).execute(); // ...run on the first
  res.json(rows.map((r) => r.id));
});
app.post('/items/:id/touch', async (req, res) => {
  const sql = 'UPDATE items SET name = name WHERE id = $1 RETURNING id';
  const bind = [req.params.id];
  res.json(await sequelize.query(sql, { type: QueryTypes.SELECT, bind })); // typed SELECT: the read pool
});
app.post('/authors/:id/follow', async (req, res) => {
  await Follower.bulkCreate([{ authorId: req.params.id, followerId: 2 }], { ignoreDuplicates: true });
  const followed = await Author.findAll({ include: [{ model: Follower, as: 'followers', where: { followerId: 2 } }] }); // from the standby
  res.json({ following: followed.some((a) => a.id === Number(req.params.id)) });
});
app.post('/reports/transfer', async (req, res) => {
  await sequelize.transaction(async (transaction) => {
    await Author.update({ name: 'author-1' }, { where: { id: 1 }, transaction });
    await Report.update({ name: 'analytics-3' }, { where: { id: 3 } }); // another database: not in the transaction
  });
  res.json('done');
});
app.get('/articles', async (req, res) => {
  const viewer = await Author.findOne({ where: { name: 'author-2' }, useMaster: true });
  const articles = await Article.findAll({ order: [['id', 'ASC']], useMaster: true });
  const rows = [];
  for (const article of articles)
    rows.push({ title: article.title, author: (await article.getAuthor({ useMaster: true })).name }); // a query per row
  const again = await Author.findOne({ where: { name: 'author-2' }, useMaster: true }); // the viewer, read again
  res.json({ viewer: viewer.name, again: again.name, rows: rows.length });
});

function call(port, method, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(`${method} ${path} → ${res.statusCode} ${body.slice(0, 60)}`));
    });
    req.on('error', reject).end();
  });
}

app.use((err, req, res, next) => res.status(500).json({ error: err.message.split('\n')[0] }));

const server = app.listen(0, async () => {
  const { port } = server.address();
  for (const [method, path] of [
    ['GET', '/items/promoted'],
    ['GET', '/items/pinned'],
    ['GET', '/items/published'],
    ['GET', '/items/everywhere'],
    ['POST', '/items/1/touch'],
    ['POST', '/authors/1/follow'],
    ['POST', '/reports/transfer'],
    ['GET', '/articles'],
  ]) {
    console.log(await call(port, method, path));
  }
  server.close();
  await Promise.all([
    shop.destroy(),
    analytics.destroy(),
    sequelize.close(),
    analyticsDb.close(),
    ...shards.map((s) => s.destroy()),
  ]);
  process.exit(0);
});
