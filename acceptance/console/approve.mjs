// A customer admin approves a playbook's action in the browser (Debian chromium driven
// by playwright-core); that tenant's viewer sees no button and is refused a forged
// approval. Waits on the action's own page until it is verified. Screenshots to OUT.
//
//   node approve.mjs URL OUT ACTION_ID   (users in KOBAN_USERS as JSON: admin, viewer)
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [url, out, actionId] = process.argv.slice(2);
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

async function shot(page, name) {
  shots += 1;
  await page.screenshot({ path: path.join(out, `${String(shots).padStart(2, '0')}-${name}.png`), fullPage: true });
}

async function login(browser, who, locale) {
  const context = await browser.newContext({
    ignoreHTTPSErrors: true,
    viewport: { width: 1366, height: 768 },
    locale,
  });
  const page = await context.newPage();
  await page.goto(`${url}/login`);
  await page.fill('input[name=user]', who.name);
  await page.fill('input[name=password]', who.password);
  await Promise.all([page.waitForURL(/\/dashboard/), page.click('button[type=submit]')]);
  return { context, page };
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

// 1. The viewer: the action is listed as waiting, with no button; a forged form post
//    (the page's own CSRF token) is refused.
{
  const { context, page } = await login(browser, users.viewer, 'en-US');
  await page.goto(`${url}/actions`);
  await shot(page, 'viewer-actions');
  const row = page.locator(`#action-${actionId}`);
  check(await row.count() === 1, `viewer sees action ${actionId}`);
  check((await row.locator('.state').innerText()).trim() === 'awaiting_approval', 'it is awaiting approval');
  check(await page.locator(`#approve-${actionId}`).count() === 0, 'viewer has no approve button');
  const csrf = await page.locator('meta[name=csrf]').getAttribute('content');
  const resp = await page.request.post(`${url}/actions/${actionId}/decide`, {
    form: { csrf, decision: 'approve' },
    maxRedirects: 0,
  });
  check(resp.status() === 403, `viewer's forged approval refused (${resp.status()})`);
  await context.close();
}

// 2. The customer admin, in Japanese: approves from the list, lands on the action's
//    page, and watches it reach `verified`.
{
  const { context, page } = await login(browser, users.admin, 'ja-JP');
  await page.goto(`${url}/actions`);
  check(await page.locator('#waiting b').innerText() !== '0', 'admin sees an action waiting for a decision');
  await shot(page, 'admin-actions-ja');
  await Promise.all([
    page.waitForURL(new RegExp(`/actions/${actionId}\\?msg=`)),
    page.click(`#approve-${actionId}`),
  ]);
  check((await page.locator('#msg').innerText()).includes('approve'), 'approval confirmed on the page');
  let state = '';
  for (let i = 0; i < 120; i++) {
    state = (await page.locator('#state .state').innerText()).trim();
    if (state !== 'queued' && state !== 'sent') break;
    await page.waitForTimeout(500);
    await page.reload();
  }
  await shot(page, 'admin-action-verified');
  check(state === 'verified', `action ${actionId} ${state}: ${await page.locator('#verification').innerText()}`);
  const steps = await page.locator('#steps li').allInnerTexts();
  check(steps.some((s) => s.includes('cat') && s.includes('queued')), 'the approval is a step, by the admin');
  await context.close();
}
await browser.close();
console.log(`screenshots: ${shots}`);
