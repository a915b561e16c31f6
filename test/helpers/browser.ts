import { existsSync } from 'node:fs';
import { type Browser, type BrowserContext, type BrowserContextOptions, chromium } from 'playwright-core';

/** Debian's Chromium; the tests never download a browser. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * Launches Debian's Chromium headless, as root, on a closed network: no sandbox (root), no background
 * networking (its connections would be refused, many at a time). Playwright gives it a fresh profile.
 * @throws when Chromium is not installed (`npm run test:all` installs it).
 */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install chromium (npm run test:all does)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * Chromium for a block of browser tests, and the contexts its tests open: {@link TestBrowser.launch} it in
 * a `before` hook and {@link TestBrowser.close} it in `after`, which closes every context made by
 * {@link TestBrowser.newContext} (a failing test's too), then the browser.
 */
export class TestBrowser {
  private browser: Browser | undefined;
  private readonly contexts: BrowserContext[] = [];

  /** Launches Chromium (see {@link launchBrowser}). */
  async launch(): Promise<void> {
    this.browser = await launchBrowser();
  }

  /** A new context with `options`, closed by {@link TestBrowser.close}. */
  async newContext(options: BrowserContextOptions = {}): Promise<BrowserContext> {
    if (!this.browser) throw new Error('the browser is launched in a before hook: use it inside tests');
    const context = await this.browser.newContext(options);
    this.contexts.push(context);
    return context;
  }

  /** Closes every context (a failure to close one is ignored), then the browser. */
  async close(): Promise<void> {
    for (const context of this.contexts.splice(0)) await context.close().catch(() => undefined);
    await this.browser?.close();
    this.browser = undefined;
  }
}
