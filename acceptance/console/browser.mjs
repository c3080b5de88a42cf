// The console in a real browser (Debian chromium driven by playwright-core), as three
// people use it:
//   1. a provider analyst logs in, finds the replayed attack's incident, moves it to
//      triage and comments;
//   2. that customer's viewer logs in, sees the comment, and is refused a state change;
//   3. another customer's viewer logs in and sees none of it.
// A screenshot of every page goes to OUT. Prints one line per step; exits 1 on the
// first failure.
//
//   node browser.mjs URL OUT   (users and passwords in KOBAN_USERS as JSON)
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [url, out] = process.argv.slice(2);
const users = JSON.parse(process.env.KOBAN_USERS);
fs.mkdirSync(out, { recursive: true });
let shots = 0;

function check(cond, what) {
  if (!cond) {
    console.log(`FAIL ${what}`);
    process.exit(1);
  }
  console.log(`ok ${what}`);
}

async function session(browser, who) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1366, height: 768 },
    locale: who.locale || 'en-US',
  });
  const page = await context.newPage();
  await page.goto(`${url}/login`);
  await shot(page, `${who.name}-login`);
  await page.fill('input[name=user]', who.name);
  await page.fill('input[name=password]', who.password);
  await Promise.all([page.waitForURL(/\/dashboard/), page.click('button[type=submit]')]);
  return { context, page };
}

async function shot(page, name) {
  shots += 1;
  await page.screenshot({ path: path.join(out, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: false });
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  // launch() starts chromium with a fresh temporary profile (its own --user-data-dir).
});

// 0. A wrong password is refused with a message.
{
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1366, height: 768 } });
  const page = await context.newPage();
  await page.goto(`${url}/login`);
  await page.fill('input[name=user]', users.analyst.name);
  await page.fill('input[name=password]', 'not the password');
  await page.click('button[type=submit]');
  check(await page.locator('#error').isVisible(), 'a wrong password is refused with a message');
  await context.close();
}

// 1. The provider analyst.
const comment = `Isolated the host at ${new Date().toISOString().slice(0, 16)}; please confirm the account owner.`;
let incidentUrl;
{
  const { context, page } = await session(browser, users.analyst);
  await shot(page, 'analyst-dashboard');
  check(await page.locator('#events-total').isVisible(), 'dashboard shows events stored');
  await page.goto(`${url}/alerts`);
  await shot(page, 'analyst-alerts');
  const alertRows = await page.locator('#alerts tbody tr').count();
  check(alertRows > 0, `alert queue lists ${alertRows} alerts`);
  await page.goto(`${url}/incidents?tenant=${users.tenant}`);
  await shot(page, 'analyst-incidents');
  const first = page.locator('#incidents tbody tr a').first();
  check(await first.count() === 1, 'the replayed attack has an incident');
  await first.click();
  incidentUrl = page.url();
  await shot(page, 'analyst-incident');
  check(await page.locator('#assessment').isVisible(), 'incident page shows severity, impact and urgency with reasons');
  check(await page.locator('#timeline tbody tr').count() > 0, 'incident page shows its alerts as a timeline');
  await page.selectOption('#state-form select[name=state]', 'triage');
  await page.fill('#state-form input[name=note]', 'taking it');
  await Promise.all([page.waitForLoadState('load'), page.click('#state-form button')]);
  check((await page.locator('#state').textContent()).trim() === 'triage', 'analyst moved the incident to triage');
  await page.fill('#comment-form textarea', comment);
  await Promise.all([page.waitForLoadState('load'), page.click('#comment-form button')]);
  check(await page.locator('#log').getByText(comment).isVisible(), 'analyst comment is on the case log');
  await shot(page, 'analyst-incident-after');
  for (const p of ['rules', 'sources']) {
    await page.goto(`${url}/${p}?tenant=${users.tenant}`);
    await shot(page, `analyst-${p}`);
  }
  // Hunting: a query whose results stream in, a pivot on a value, a host's timeline.
  await page.goto(`${url}/hunt?tenant=${users.tenant}&q=${encodeURIComponent('EventID=1 | top 5 Image')}`);
  await page.waitForFunction(() => document.getElementById('hunt-summary').textContent.includes('matched'));
  check(await page.locator('#hunt-results tbody tr').count() > 0, 'hunt: a top 5 over the stored events streams in');
  await shot(page, 'analyst-hunt');
  await page.locator('#hunt-results a.pivot').first().click();
  await page.waitForFunction(() => document.getElementById('hunt-summary').textContent.includes('matched'));
  check((await page.locator('textarea[name=q]').inputValue()).includes('Image='), 'hunt: clicking a value filters on it');
  await page.goto(`${url}/hunt?tenant=${users.tenant}&q=${encodeURIComponent('EventID=4625 | stats count() by')}`);
  await page.waitForFunction(() => !document.getElementById('hunt-error').hidden);
  check((await page.locator('#hunt-error').textContent()).includes('^'), 'hunt: a syntax error points at its place');
  await page.goto(`${url}/timeline?tenant=${users.tenant}&kind=host&value=mkt01.pandalab.com`);
  check(await page.locator('table.nav tbody tr.alert').count() > 0, 'timeline: the host\'s alerts among its events');
  await shot(page, 'analyst-timeline');
  // Keyboard: g i goes to the incidents.
  await page.goto(`${url}/dashboard`);
  await page.keyboard.press('g');
  await page.keyboard.press('i');
  await page.waitForURL(/\/incidents/);
  check(true, 'keyboard: g i opens the incidents');
  await context.close();
}

// 1b. The provider admin sees tenants, users and the audit log; in Japanese.
{
  const { context, page } = await session(browser, { ...users.admin, locale: 'ja-JP' });
  await shot(page, 'admin-dashboard-ja');
  check((await page.locator('nav').textContent()).includes('インシデント'), 'the browser language (ja) is the default');
  await page.goto(`${url}/admin`);
  await shot(page, 'admin-admin-ja');
  check(await page.locator('#audit tbody tr').count() > 0, 'the audit log lists the reads and changes');
  await page.click('header form[action="/lang"] button');
  await page.waitForLoadState('load');
  check((await page.locator('nav').textContent()).includes('Incidents'), 'a user can switch to English');
  await shot(page, 'admin-admin-en');
  await context.close();
}

// 2. The customer's viewer.
{
  const { context, page } = await session(browser, users.viewer);
  await shot(page, 'viewer-dashboard');
  await page.goto(incidentUrl);
  await shot(page, 'viewer-incident');
  check(await page.locator('#log').getByText(comment).isVisible(), 'the customer viewer sees the provider comment');
  check(await page.locator('#state-form').count() === 0, 'the viewer gets no state form (read-only)');
  const csrf = await page.locator('meta[name=csrf]').getAttribute('content');
  const id = incidentUrl.split('/').pop();
  const status = await page.evaluate(async ([id, csrf]) => {
    const r = await fetch(`/incidents/${id}/state`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `csrf=${csrf}&state=contained&note=x`,
    });
    return r.status;
  }, [id, csrf]);
  check(status === 403, `the viewer's state change is refused (HTTP ${status})`);
  const api = await page.evaluate(async ([id, csrf]) => {
    const r = await fetch(`/api/v1/incidents/${id}/state`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
      body: JSON.stringify({ state: 'contained' }),
    });
    return r.status;
  }, [id, csrf]);
  check(api === 403, `... and over the API too (HTTP ${api})`);
  await page.reload();
  check((await page.locator('#state').textContent()).trim() === 'triage', 'the state is unchanged');
  await context.close();
}

// 3. Another customer.
{
  const { context, page } = await session(browser, users.other);
  await page.goto(`${url}/incidents`);
  await shot(page, 'other-incidents');
  check(await page.locator('#incidents tbody tr').count() === 0, 'another customer lists no incidents of the first');
  const resp = await page.goto(incidentUrl);
  await shot(page, 'other-incident-refused');
  check(resp.status() === 404, `another customer opening the incident gets ${resp.status()}`);
  await page.goto(`${url}/alerts`);
  check(await page.locator('#alerts tbody tr').count() === 0, 'another customer sees no alerts of the first');
  await context.close();
}

await browser.close();
console.log(`browser: all steps passed, ${shots} screenshots in ${out}`);
