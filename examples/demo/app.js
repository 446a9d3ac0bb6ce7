// A small "orders" service with a routing bug: the handler for POST /orders uses the read pool.
// Run it through `npm run demo`, which starts a primary and a streaming standby and preloads querytrail.
const http = require('node:http');
const express = require('express');
const pg = require('pg');

const primary = new pg.Pool({ connectionString: process.env.QT_PRIMARY });
const replica = new pg.Pool({ connectionString: process.env.QT_STANDBY });

const app = express();
app.get('/orders/:id', async (req, res) => {
  const { rows } = await replica.query('SELECT id, name FROM items WHERE id = $1', [req.params.id]);
  res.json(rows);
});
app.post('/orders', async (req, res) => {
  try {
    await replica.query('INSERT INTO items (name) VALUES ($1)', ['new order']); // bug: the read pool
    res.status(201).end();
  } catch (err) {
    res.status(500).json({ error: err.message });
  }
});

function call(port, method, path) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(`${method} ${path} → ${res.statusCode} ${body}`));
    });
    req.on('error', reject);
    req.end();
  });
}

const server = app.listen(0, async () => {
  const { port } = server.address();
  console.log(await call(port, 'GET', '/orders/1'));
  console.log(await call(port, 'POST', '/orders'));
  server.close();
  await Promise.all([primary.end(), replica.end()]);
});
