'use strict';
// Cookie jar and a fetch with it, for the session tests.

class Jar {
  constructor() { this.cookies = new Map(); }
  header() { return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '); }
  take(res) {
    const all = res.headers.getSetCookie ? res.headers.getSetCookie() : [res.headers.get('set-cookie')].filter(Boolean);
    for (const c of all) {
      const [pair] = c.split(';');
      const i = pair.indexOf('=');
      this.cookies.set(pair.slice(0, i).trim(), pair.slice(i + 1).trim());
    }
  }
  get(name) { return this.cookies.get(name); }
}

async function fetchWith(jar, url) {
  const res = await fetch(url, { headers: jar.header() ? { cookie: jar.header() } : {} });
  jar.take(res);
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, text, json, headers: res.headers };
}

module.exports = { Jar, fetchWith };
