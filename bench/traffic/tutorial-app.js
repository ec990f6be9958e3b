'use strict';
// A tutorial app, exactly as the Node docs and PM2 guides write one: no
// socket handling, no ready message, no signal handling. The benchmark runs
// it unchanged under corral with `node -r worker/node/register.js` (the
// corral-node-register row), which takes the inherited socket, says ready
// and drains gracefully for it. Same routes as app.js.
const http = require('node:http');

http.createServer((req, res) => {
  const url = new URL(req.url, 'http://x');
  let body = `hello from node app (pid ${process.pid})\n`;
  if (url.pathname === '/heavy') {
    const n = Number(url.searchParams.get('n') || 1e6);
    let result = 0;
    for (let i = 0; i < n; i++) result += Math.sqrt(i);
    body = JSON.stringify({ n, result, pid: process.pid }) + '\n';
  }
  res.writeHead(200, { 'Content-Type': 'text/plain', 'X-Worker': String(process.pid) });
  res.end(body);
}).listen(3000);
