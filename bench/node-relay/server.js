// The "typical stack" reference relay of docs/performance.md: the same
// relay subset as bench/ceiling/main.rs (loadgen --mode relay), in Node 20
// with `ws` and `pg`, written the way a typical chat backend is: one awaited
// INSERT per message (autocommit, synchronous_commit on), then the ack and
// the event. A conversation's messages are inserted one after another so
// its seq order holds; different conversations insert concurrently through
// the pool. A benchmark fixture, not part of the server.
//
// Environment: RELAY_DATABASE_URL (Postgres), RELAY_BIND (default
// 127.0.0.1:18080), RELAY_POOL (connections, default 10).
'use strict';

const http = require('node:http');
const { WebSocketServer } = require('ws');
const { Pool } = require('pg');

const url = process.env.RELAY_DATABASE_URL;
if (!url) {
  console.error('node-relay: RELAY_DATABASE_URL is required');
  process.exit(2);
}
const [host, port] = (process.env.RELAY_BIND || '127.0.0.1:18080').split(':');
const pool = new Pool({ connectionString: url, max: Number(process.env.RELAY_POOL || 10) });

// conversation_id -> { nextSeq, customer, agent, tail }
const conversations = new Map();

function conversation(id) {
  let c = conversations.get(id);
  if (!c) {
    c = { nextSeq: 0, customer: null, agent: null, tail: Promise.resolve() };
    conversations.set(id, c);
  }
  return c;
}

function send(socket, frame) {
  if (socket && socket.readyState === 1) socket.send(JSON.stringify(frame));
}

async function store(c, id, seq, role, clientMsgId, text, sender) {
  try {
    await pool.query(
      'insert into relay_messages (conversation_id, seq, author, body) values ($1, $2, $3, $4)',
      [id, seq, role, text],
    );
  } catch (e) {
    // Nothing is acknowledged; the generator's verification fails.
    console.error('node-relay: insert failed:', e.message);
    return;
  }
  send(sender, { type: 'ack', conversation_id: id, client_msg_id: clientMsgId, seq, duplicate: false });
  const event = {
    type: 'event', conversation_id: id, seq, kind: 'message', author: { role },
    text, client_msg_id: clientMsgId, audience: 'everyone',
  };
  send(c.customer, event);
  send(c.agent, event);
}

function connection(socket) {
  let own = null;
  let role = 'customer';
  socket.on('message', (data) => {
    let cmd;
    try {
      cmd = JSON.parse(data.toString());
    } catch {
      return;
    }
    switch (cmd.type) {
      case 'ping':
        send(socket, { type: 'pong' });
        break;
      case 'resume': {
        const c = conversation(cmd.conversation_id);
        c.customer = socket;
        own = cmd.conversation_id;
        send(socket, { type: 'resumed', conversation: { conversation_id: own, last_seq: c.nextSeq } });
        break;
      }
      case 'accept': {
        role = 'agent';
        const c = conversation(cmd.conversation_id);
        c.agent = socket;
        send(socket, { type: 'chat_accepted', conversation: { conversation_id: cmd.conversation_id, last_seq: c.nextSeq } });
        break;
      }
      case 'send': {
        const id = cmd.conversation_id || own;
        if (!id) return;
        const c = conversation(id);
        c.nextSeq += 1;
        const seq = c.nextSeq;
        c.tail = c.tail.then(() => store(c, id, seq, role, cmd.client_msg_id, cmd.text, socket));
        break;
      }
      default:
        break;
    }
  });
}

async function main() {
  await pool.query(
    'create table if not exists relay_messages (id bigserial primary key, ' +
      'conversation_id text not null, seq bigint not null, author text not null, ' +
      'body text not null, created_at timestamptz not null default now(), ' +
      'unique (conversation_id, seq))',
  );
  const server = http.createServer((req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok');
    } else {
      res.writeHead(404);
      res.end();
    }
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', connection);
  server.listen(Number(port), host);
}

main().catch((e) => {
  console.error('node-relay:', e.message);
  process.exit(1);
});
