// GraphiQL as a person uses it, in headless Chromium: the page renders from our own origin
// only (no CDN), the headers editor carries the bearer token, a mutation runs, and a
// subscription runs over the websocket.
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { BASE_URL, ENDPOINT, assert, cleanup, env, freshIdentifier, gql, reporter } from './lib.mjs';

const TOKEN = env('TOKEN');
const SOURCE_UUID = env('SOURCE_UUID');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const OUT = join(dirname(fileURLToPath(import.meta.url)), 'out');
const ORIGIN = new URL(BASE_URL).origin;

const t = reporter('graphiql');
const requests = []; // every URL the page asked for
const foreign = []; // those not on our origin (aborted, so nothing leaves the machine)
const pageErrors = [];
const createdPks = [];
let mutationAuth = null; // Authorization header of the browser's mutation POST

await cleanup(TOKEN, SOURCE_UUID);

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  headless: true,
  args: [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
  ],
});
try {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  await context.route('**/*', (route) => {
    const req = route.request();
    requests.push(req.url());
    if (new URL(req.url()).origin !== ORIGIN) {
      foreign.push(req.url());
      return route.abort();
    }
    if (req.method() === 'POST' && /createUserOAuthConnection/.test(req.postData() ?? '')) {
      mutationAuth = req.headers().authorization ?? null;
    }
    return route.continue();
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`console: ${m.text()}`);
  });
  // CSP violations are reported to the page as events; collect them.
  await page.addInitScript(() => {
    window.__csp = [];
    document.addEventListener('securitypolicyviolation', (e) =>
      window.__csp.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`));
  });
  let introspected = false;
  page.on('response', async (res) => {
    if (res.url() === ENDPOINT && res.request().method() === 'POST'
        && /__schema/.test(res.request().postData() ?? '')) {
      try {
        introspected = Boolean((await res.json()).data?.__schema);
      } catch { /* page closed */ }
    }
  });

  let response;
  await t.check('GET /graphql serves HTML with a strict CSP', async () => {
    response = await page.goto(ENDPOINT, { waitUntil: 'load' });
    assert(response.status() === 200, `HTTP ${response.status()}`);
    assert(/text\/html/.test(response.headers()['content-type']), 'not text/html');
    const csp = response.headers()['content-security-policy'] ?? '';
    assert(/script-src 'self'(;|$)/.test(csp) && !/unsafe-(inline|eval)/.test(csp), `CSP: ${csp}`);
  });

  await t.check('GraphiQL editor renders and loads the schema', async () => {
    await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout: 15000 });
    await page.waitForSelector('.graphiql-execute-button', { timeout: 5000 });
    for (let i = 0; i < 50 && !introspected; i++) await page.waitForTimeout(100);
    assert(introspected, 'no successful introspection request from the page');
  });

  const identifier = freshIdentifier();
  let result = '';
  await t.check('mutation with the headers editor token runs and shows the new connection', async () => {
    const query = `mutation CreateFromGraphiQL {
  createUserOAuthConnection(input: {source: "${SOURCE_UUID}", identifier: "${identifier}"}) {
    pk
    user
    identifier
    created
    source { pk slug name }
  }
}`;
    await page.evaluate((q) => {
      document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q);
    }, query);
    await page.click('.graphiql-editor-tools button[data-name="headers"]');
    await page.waitForSelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror');
    await page.evaluate((h) => {
      document.querySelector('.graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror').CodeMirror.setValue(h);
    }, JSON.stringify({ Authorization: `Bearer ${TOKEN}` }));
    await page.click('.graphiql-execute-button');
    await page.waitForFunction(() => {
      const v = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '';
      return /"(data|errors)"/.test(v);
    }, null, { timeout: 15000 });
    result = await page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue());
    const json = JSON.parse(result);
    if (json.data?.createUserOAuthConnection?.pk) createdPks.push(json.data.createUserOAuthConnection.pk);
    assert(result.includes(identifier), `result lacks the identifier:\n${result}`);
    assert(result.includes(SOURCE_UUID), `result lacks the source uuid:\n${result}`);
    assert(!/access_?token/i.test(result), 'result mentions accessToken');
  });

  await t.check('the headers editor sent Authorization: Bearer <TOKEN>', async () => {
    assert(mutationAuth === `Bearer ${TOKEN}`, `Authorization was ${JSON.stringify(mutationAuth)}`);
  });

  await t.check('a subscription runs over the websocket and shows a deletion', async () => {
    const subscription = 'subscription Watch { userOAuthSourceConnectionEvents { kind id pk } }';
    await page.evaluate((q) => {
      document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(q);
    }, subscription);
    // GraphiQL learns the new operation's name (and type) from its debounced parse.
    await page.waitForTimeout(1000);
    await page.click('.graphiql-execute-button');
    await page.waitForTimeout(1000); // connection_init, ack, subscribe
    const pk = createdPks.pop();
    const r = await gql('mutation($pk: Int!) { deleteUserOAuthSourceConnection(pk: $pk) }', { pk }, TOKEN);
    assert(!r.json.errors, `delete failed: ${r.text}`);
    await page.waitForFunction(() => {
      const v = document.querySelector('.graphiql-response .CodeMirror')?.CodeMirror.getValue() ?? '';
      return /"DELETED"/.test(v);
    }, null, { timeout: 10000 });
    const shown = await page.evaluate(() => document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue());
    assert(shown.includes(`"pk": ${pk}`), `the event is not the deletion of ${pk}:\n${shown}`);
  });

  await t.check('screenshot saved to tests/e2e/out/graphiql.png', async () => {
    mkdirSync(OUT, { recursive: true });
    await page.screenshot({ path: join(OUT, 'graphiql.png') });
  });

  await t.check('every request was same-origin (no CDN)', async () => {
    assert(requests.length >= 5, `only ${requests.length} requests recorded`);
    assert(foreign.length === 0, `foreign requests: ${foreign.join(', ')}`);
  });

  await t.check('no CSP violation, page error or console error', async () => {
    const csp = await page.evaluate(() => window.__csp);
    const all = [...csp.map((c) => `csp: ${c}`), ...pageErrors];
    assert(all.length === 0, all.join('\n'));
  });
} finally {
  await browser.close();
  await cleanup(TOKEN, SOURCE_UUID, createdPks);
}
t.finish();
